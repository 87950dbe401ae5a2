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
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import webob

from handlers import worker
from handlers.base import form_fields
from pushqueue import logs
from pushqueue.tasks import FORM_CONTENT_TYPE
from pushqueue.wire import SOCKET_ID_HEADER, WORKER_BATCH_PATH, WORKER_PUSH_PATH

if TYPE_CHECKING:
    from handlers.application import Services

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_PUSH_PREFIX = WORKER_PUSH_PATH + "/"
_SOCKET_ID_KEY = "HTTP_" + SOCKET_ID_HEADER.upper().replace("-", "_")
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class WorkerFastPath:
    """A WSGI app serving the worker's common case itself and passing the rest to ``app``."""

    def __init__(self, app: WSGIApp, services: Services):
        self.app = app
        self.services = services

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        route = self._route(environ)
        services = self.services
        if route is None or services.oidc_verifier is not None:
            return self.app(environ, start_response)
        headers = worker.proven_headers(environ, services.settings, None)
        length = environ.get("CONTENT_LENGTH", "")
        declared = int(length) if length.isascii() and length.isdigit() else None
        if headers is None or declared is None or declared > worker.MAX_TASK_BODY_BYTES:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(declared)
        if len(body) != declared:  # the client went away: webapp2 answers it as ever
            return self._pass_on(environ, body, start_response)
        url = environ.get("RAW_URI") or webob.BaseRequest(environ).path_qs
        task = worker.incoming_task(environ, headers, url, body)
        try:
            if route is _BATCH:
                result = services.worker.deliver_batch(task)
            else:
                content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip()
                try:
                    data = form_fields(body) if content_type == FORM_CONTENT_TYPE else body
                except ValueError:
                    return self._pass_on(environ, body, start_response)
                channel, event = route
                result = services.worker.deliver(task, channel, event, data, environ.get(_SOCKET_ID_KEY))
        except Exception:
            logs.log(logging.ERROR, "unhandled error", exc_info=True, path=environ.get("PATH_INFO", "")[:300])
            return _json(start_response, 500, {"error": "internal error"})
        return _json(start_response, result.http_status, worker.answer(result))

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

    def _pass_on(
        self, environ: dict[str, Any], body: bytes, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Hand the request to webapp2 with the body already read put back."""
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


_BATCH = object()


def _json(start_response: Callable[..., Any], status: int, value: Any) -> list[bytes]:
    body = json.dumps(value).encode("utf-8")
    start_response(
        _STATUS_LINES[status], [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
