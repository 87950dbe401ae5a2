"""The worker's common case served in front of webapp2: a proven queue task, POSTed to
``/worker/push/<channel>/<event>`` or ``/worker/batch`` with a declared body of at most
1 MB, and no OIDC token to check.

webapp2's request and response objects, its routing and WebOb's body copy cost more than
the rest of a task (``make bench`` measures the app's own cost in-process). This path reads
the WSGI environ directly and asks :mod:`handlers.worker` the same questions: which task
headers are proven, what the task is, what the queue is told. Every other request, and any
task this path is not sure of (no proven headers, no or a too large ``Content-Length``,
form fields that are not UTF-8, an OIDC check), goes to webapp2 as it came, so every
refusal is answered and logged by the handlers in one place.

Served by :mod:`handlers.rsgi_bridge`, a one-event task goes further: :meth:`serve_on_loop`
triggers it on the server's event loop (``Worker.deliver_on_loop``, through an asyncio
transport), with no thread in between; the rest runs on the bridge's threads.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NamedTuple

import webob

from handlers import worker
from handlers.base import form_fields
from handlers.rsgi_bridge import Answer, Blocking
from pushqueue import logs
from pushqueue.tasks import FORM_CONTENT_TYPE
from pushqueue.wire import SOCKET_ID_HEADER, WORKER_BATCH_PATH, WORKER_PUSH_PATH
from pushqueue.worker import IncomingTask, Result

if TYPE_CHECKING:
    from handlers.application import Services

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_PUSH_PREFIX = WORKER_PUSH_PATH + "/"
_SOCKET_ID_KEY = "HTTP_" + SOCKET_ID_HEADER.upper().replace("-", "_")
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_BATCH = object()
_JSON_HEADERS = [("Content-Type", "application/json")]


@dataclass(frozen=True, slots=True)
class FastTask:
    """A proven task this path serves: one event (``route`` is its channel and event) or a
    batch (``route`` is ``None``)."""

    task: IncomingTask
    route: tuple[str, str] | None
    data: Any
    socket_id: str | None


class _Accepted(NamedTuple):
    route: tuple[str, str] | object
    headers: worker.QueueHeaders
    length: int


class WorkerFastPath:
    """A WSGI app serving the worker's common case itself and passing the rest to ``app``."""

    def __init__(self, app: WSGIApp, services: Services):
        self.app = app
        self.services = services

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        accepted = self._accept(environ)
        if accepted is None:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(accepted.length)
        fast = self._fast_task(environ, accepted, body) if len(body) == accepted.length else None
        if fast is None:  # the client went away, or form fields not UTF-8: webapp2 answers it
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        worker = self.services.worker
        try:
            if fast.route is None:
                result = worker.deliver_batch(fast.task)
            else:
                result = worker.deliver(fast.task, *fast.route, fast.data, fast.socket_id)
        except Exception:
            status, headers, answer = _unhandled(environ)
        else:
            status, headers, answer = _answer(result)
        start_response(_STATUS_LINES[status], headers)
        return [answer]

    async def serve_on_loop(self, environ: dict[str, Any], body: bytes, blocking: Blocking) -> Answer | None:
        """The answer to a one-event task, triggered on the running event loop (``blocking``
        runs a call on a thread: parking), or ``None`` where the WSGI app must answer."""
        worker = self.services.worker
        accepted = self._accept(environ) if worker.loop_pusher is not None else None
        if accepted is None or accepted.route is _BATCH or accepted.length != len(body):
            return None
        fast = self._fast_task(environ, accepted, body)
        if fast is None:
            return None
        try:
            result = await worker.deliver_on_loop(fast.task, *fast.route, fast.data, fast.socket_id, blocking)
        except Exception:
            return _unhandled(environ)
        return _answer(result)

    @staticmethod
    def _fast_task(environ: dict[str, Any], accepted: _Accepted, body: bytes) -> FastTask | None:
        """The task of an ``accepted`` request with its ``body``, or ``None`` when webapp2
        must answer it (form fields that are not UTF-8)."""
        url = environ.get("RAW_URI") or webob.BaseRequest(environ).path_qs
        task = worker.incoming_task(environ, accepted.headers, url, body)
        route = accepted.route
        if route is _BATCH:
            return FastTask(task, None, None, None)
        data: Any = body
        if environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip() == FORM_CONTENT_TYPE:
            try:
                data = form_fields(body)
            except ValueError:
                return None
        return FastTask(task, route, data, environ.get(_SOCKET_ID_KEY))  # type: ignore[arg-type]

    def _accept(self, environ: dict[str, Any]) -> _Accepted | None:
        """A proven task for this path, or ``None`` (another route, no proven headers, an
        OIDC check to make, no or a too large declared length)."""
        route = self._route(environ)
        if route is None or self.services.oidc_verifier is not None:
            return None
        headers = worker.proven_headers(environ, self.services.settings, None)
        length = environ.get("CONTENT_LENGTH", "")
        declared = int(length) if length.isascii() and length.isdigit() else None
        if headers is None or declared is None or declared > worker.MAX_TASK_BODY_BYTES:
            return None
        return _Accepted(route, headers, declared)

    @staticmethod
    def _route(environ: dict[str, Any]) -> tuple[str, str] | object | None:
        """``(channel, event)`` for one event, :data:`_BATCH`, or ``None`` (not this path's)."""
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if path == WORKER_BATCH_PATH:
            return _BATCH
        if not path.startswith(_PUSH_PREFIX):
            return None
        parts = path[len(_PUSH_PREFIX) :].split("/")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            return None
        if not path.isascii():  # as webapp2 routes it: the path's bytes read as UTF-8
            parts = path.encode("latin-1").decode("utf-8")[len(_PUSH_PREFIX) :].split("/")
        return parts[0], parts[1]


def _answer(result: Result) -> Answer:
    """What the queue is told: the result's status and outcome as JSON."""
    body = json.dumps(worker.answer(result)).encode("utf-8")
    return result.http_status, [*_JSON_HEADERS, ("Content-Length", str(len(body)))], body


def _unhandled(environ: dict[str, Any]) -> Answer:
    logs.log(logging.ERROR, "unhandled error", exc_info=True, path=environ.get("PATH_INFO", "")[:300])
    body = json.dumps({"error": "internal error"}).encode("utf-8")
    return 500, [*_JSON_HEADERS, ("Content-Length", str(len(body)))], body
