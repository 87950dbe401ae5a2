"""For your own tests: :class:`RecordingTransport` records what would have been sent (validated
and signed as for Pusher), with no network; ``*_async`` gives finished futures. See
docs/pusherlib.md, 'Testing your code'."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from .transports.base import Request, Response, Transport

T = TypeVar("T")
SIGNING_PARAMS = frozenset({"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"})


@dataclass(frozen=True)
class RecordedRequest:
    """One request that would have been sent."""

    method: str
    path: str  # without the query, e.g. /apps/1/events
    query: dict[str, str]  # the query parameters, signing ones left out
    body: Any  # the decoded JSON body (None for a GET; the bytes when not JSON)
    request: Request  # the signed request itself

    @property
    def endpoint(self) -> str:
        """The path under ``/apps/<app_id>``: ``/events``, ``/channels/x``..."""
        return "/" + self.path.split("/", 3)[3] if self.path.count("/") >= 3 else self.path


class FinishedFuture(Future):
    """A future that is already done; ``get_result()`` is NDB's name for ``result()``."""

    def get_result(self) -> Any:
        return self.result()


class RecordingTransport(Transport):
    """Records requests instead of sending them; answers with queued responses."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._responses: deque[Response | Exception] = deque()
        self._lock = threading.Lock()

    def respond(self, status: int = 200, body: Any = None, *, error: Exception | None = None) -> None:
        """Queue the answer to the next request: ``status`` with ``body`` (JSON-encoded
        unless bytes), or ``error`` raised (e.g. ``PusherTimeout("...")``)."""
        if error is not None:
            self._responses.append(error)
            return
        content = body if isinstance(body, bytes) else json.dumps({} if body is None else body).encode()
        self._responses.append(Response(status, content, {"content-type": "application/json"}))

    def send(self, request: Request) -> Response:
        path, _, query = request.target.partition("?")
        body = _json_or_bytes(request.body)
        params = {k: v for k, v in parse_qsl(query, keep_blank_values=True) if k not in SIGNING_PARAMS}
        with self._lock:
            self.requests.append(RecordedRequest(request.method, path, params, body, request))
            answer = self._responses.popleft() if self._responses else Response(200, b"{}", {})
        if isinstance(answer, Exception):
            raise answer
        return answer

    def request_async(self, request: Request, read: Callable[[Response], T]) -> FinishedFuture:
        future = FinishedFuture()
        try:
            future.set_result(read(self.send(request)))
        except Exception as exc:
            future.set_exception(exc)
        return future

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event triggered, as ``{"name", "channels", "data"}`` (+ ``socket_id``, ``info``),
        ``data`` decoded when it is JSON."""
        found = []
        for recorded in self.requests:
            if recorded.endpoint == "/events":
                found.append(_decoded(recorded.body))
            elif recorded.endpoint == "/batch_events":
                for event in recorded.body["batch"]:
                    item = _decoded(event)
                    item["channels"] = [item.pop("channel")]
                    found.append(item)
        return found

    def clear(self) -> None:
        """Forget the recorded requests and queued responses."""
        with self._lock:
            self.requests.clear()
            self._responses.clear()


def _json_or_bytes(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def _decoded(event: dict[str, Any]) -> dict[str, Any]:
    item = dict(event)
    with contextlib.suppress(ValueError, TypeError):
        item["data"] = json.loads(item["data"])
    return item
