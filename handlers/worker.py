"""The worker core: :class:`TaskCore` proves, parses and settles every queue task and returns
its answer, on a thread (:meth:`TaskCore.serve`) or on the event loop
(:meth:`TaskCore.serve_on_loop`). The app and the server bridge route tasks to it before
webapp2; :class:`WorkerHandler` is its webapp2 route. See [docs/worker.md](../docs/worker.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import webapp2
import webob

from access import oidc
from handlers.base import JsonHandler, form_fields
from handlers.body_limit import check_length, read_input
from handlers.errors import Answer, Refused, error_answer, json_answer, wsgi_answer
from handlers.rsgi_bridge import Blocking
from pushqueue import logs
from pushqueue.outcome import TaskRefused
from pushqueue.tasks import FORM_CONTENT_TYPE, TaskRequest, parse_count
from pushqueue.wire import SOCKET_ID_HEADER, WORKER_BATCH_PATH, WORKER_PATH_PREFIX, WORKER_PUSH_PATH
from pushqueue.worker import IncomingTask, Result, to_the_end, unnamed_task_name

if TYPE_CHECKING:
    from handlers.application import Services
    from settings import Settings

MAX_TASK_BODY_BYTES = 1024 * 1024  # no queue task is larger (Cloud Tasks' limit; the bundled queue: 100 KB)
KEPT_HEADERS = ("Content-Type", SOCKET_ID_HEADER)  # what a parked task needs to be replayed
_KEPT_ENVIRON_KEYS = tuple(
    (name, "CONTENT_TYPE" if name == "Content-Type" else "HTTP_" + name.upper().replace("-", "_"))
    for name in KEPT_HEADERS
)
_PUSH_PREFIX = WORKER_PUSH_PATH + "/"
_SOCKET_ID_KEY = "HTTP_" + SOCKET_ID_HEADER.upper().replace("-", "_")


@dataclass(frozen=True, slots=True)
class QueueHeaders:
    """One queue service's task headers, as WSGI environ keys (the cheapest way to read them)."""

    queue: str
    task_name: str
    execution_count: str  # earlier attempts that reached the app (the retry count also counts others)


APP_ENGINE_HEADERS = QueueHeaders(
    "HTTP_X_APPENGINE_QUEUENAME", "HTTP_X_APPENGINE_TASKNAME", "HTTP_X_APPENGINE_TASKEXECUTIONCOUNT"
)
CLOUD_TASKS_HEADERS = QueueHeaders(
    "HTTP_X_CLOUDTASKS_QUEUENAME", "HTTP_X_CLOUDTASKS_TASKNAME", "HTTP_X_CLOUDTASKS_TASKEXECUTIONCOUNT"
)
UNPROVEN = (
    "only the task queue may call the worker: X-AppEngine-* headers prove it only on App Engine, "
    "X-CloudTasks-* headers only with a verified OIDC token"
)


@dataclass(frozen=True, slots=True)
class Task:
    """A proven task, parsed: one event (``route``: its channel and event), a batch
    (``route`` is ``None``), or one that can never be served (``refused`` says why)."""

    incoming: IncomingTask
    route: tuple[str, str] | None = None
    data: Any = None
    socket_id: str | None = None
    refused: str | None = None


class TaskCore:
    """Proves, parses and settles queue tasks with the app's :class:`Services`."""

    def __init__(self, services: Services):
        self.services = services

    def serve(self, environ: dict[str, Any], body: bytes | None = None) -> Answer:
        """The answer to a task request, on this thread (``body``: already read, or ``None``:
        still in ``wsgi.input``)."""
        try:
            self.check_token(environ)
            task = self.task(environ, body)
            return task_answer(self.settle(task))
        except Exception as exc:
            return error_answer(exc, environ.get("PATH_INFO", ""))

    async def serve_on_loop(self, environ: dict[str, Any], body: bytes, blocking: Blocking) -> Answer:
        """The answer to a task request with its ``body`` read, on the running event loop: a
        one-event task is triggered there when the worker has an asyncio client; parking,
        batches and token checks run through ``blocking`` (a call on a thread)."""
        worker = self.services.worker
        if self.services.oidc_verifier is not None or worker.loop_pusher is None:
            return await to_the_end(blocking(functools.partial(self.serve, environ, body)))
        try:
            task = self.task(environ, body)
            if task.route is None or task.refused is not None:
                result = await to_the_end(blocking(functools.partial(self.settle, task)))
            else:
                result = await worker.deliver_on_loop(
                    task.incoming, *task.route, task.data, task.socket_id, blocking
                )
            return task_answer(result)
        except Exception as exc:
            return error_answer(exc, environ.get("PATH_INFO", ""))

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """:meth:`serve` as a WSGI app: the app's ``POST /worker/`` route."""
        return wsgi_answer(self.serve(environ), start_response)

    def check_token(self, environ: dict[str, Any]) -> None:
        """Check the request's OIDC token, if one is required; log and raise the refusal."""
        verifier = self.services.oidc_verifier
        if verifier is None:
            return
        try:
            verifier.verify(environ.get("HTTP_AUTHORIZATION"))
            return
        except oidc.TokenRefused as exc:
            status, reason, detail = exc.status, str(exc), None
        except oidc.CertsUnavailable as exc:
            status, reason, detail = 503, "the token cannot be checked now", str(exc)
        logs.log(
            logging.WARNING,
            "worker request refused",
            path=_request_path(environ),
            task=environ.get(CLOUD_TASKS_HEADERS.task_name),
            status=status,
            reason=reason,
            error=detail,
        )
        raise Refused(reason, status, [("WWW-Authenticate", "Bearer")] if status == 401 else ())

    def task(self, environ: dict[str, Any], body: bytes | None) -> Task:
        """The task a request carries (``body``: read, or ``None``: in ``wsgi.input``): 403
        unless proven, 413 when larger than any task can be (before reading it whole)."""
        services = self.services
        headers = proven_headers(environ, services.settings, services.oidc_verifier)
        if headers is None:
            raise Refused(UNPROVEN, 403)
        if body is None:
            body = read_input(environ, MAX_TASK_BODY_BYTES)
        else:
            check_length(len(body), MAX_TASK_BODY_BYTES)
        url = environ.get("RAW_URI") or webob.BaseRequest(environ).path_qs  # gunicorn's RAW_URI: as sent
        incoming = incoming_task(environ, headers, url, body)
        method = environ["REQUEST_METHOD"]
        if method != "POST":
            return Task(incoming, refused=f"the worker serves POST only; a {method} task cannot be served")
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if path == WORKER_BATCH_PATH:
            return Task(incoming)
        route = _event_route(path)
        if route is None:
            expected = f"{WORKER_PUSH_PATH}/<channel>/<event>"
            return Task(incoming, refused=f"no worker serves {_request_path(environ)} (expected {expected})")
        data: Any = body
        if environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip() == FORM_CONTENT_TYPE:
            try:
                data = form_fields(body)
            except ValueError as exc:
                return Task(incoming, refused=f"the form fields are not UTF-8: {exc}")
        return Task(incoming, route, data, environ.get(_SOCKET_ID_KEY))

    def settle(self, task: Task) -> Result:
        """Send the task's events and settle it (on this thread)."""
        worker = self.services.worker
        if task.refused is not None:
            return worker.refuse(task.incoming, TaskRefused(task.refused))
        if task.route is None:
            return worker.deliver_batch(task.incoming)
        return worker.deliver(task.incoming, *task.route, task.data, task.socket_id)


class WorkerHandler(JsonHandler):
    """The core as a webapp2 route: any method (a task that is not a POST is parked)."""

    def dispatch(self) -> None:
        self.send_answer(self.app.task_core.serve(self.request.environ))


def routes(services: Services) -> list[webapp2.Route]:
    """Any ``/worker/`` URL, served by the core (webapp2 sees only what the app does not
    route to the core first: see :class:`~handlers.application.Application`)."""
    return [webapp2.Route(WORKER_PATH_PREFIX + "<:.*>", WorkerHandler)]


def task_answer(result: Result) -> Answer:
    """What the queue is told of an attempt: ``{"outcome", "error"?}`` with its status."""
    told = {"outcome": result.outcome.value}
    if result.error:
        told["error"] = result.error
    return json_answer(result.http_status, told)


def proven_headers(
    environ: dict[str, Any], settings: Settings, verifier: oidc.OidcVerifier | None
) -> QueueHeaders | None:
    """The task headers this request may be believed on with these settings (``verifier``:
    the OIDC check, already passed), or ``None`` when it proves no queue sent it."""
    if (settings.app_engine_standard or settings.local_development) and environ.get(APP_ENGINE_HEADERS.queue):
        return APP_ENGINE_HEADERS
    if (verifier is not None or settings.local_development) and environ.get(CLOUD_TASKS_HEADERS.queue):
        return CLOUD_TASKS_HEADERS
    return None


def incoming_task(environ: dict[str, Any], headers: QueueHeaders, url: str, body: bytes) -> IncomingTask:
    """The task a proven queue request carries (``url``: the task's URL, ``body`` read);
    one without a name header is named after its queue and request."""
    queue_name = environ[headers.queue].rsplit("/", 1)[-1]  # the emulator sends the full path
    request = TaskRequest(
        url=url,
        body=body,
        headers=tuple((name, environ[key]) for name, key in _KEPT_ENVIRON_KEYS if key in environ),
        method=environ["REQUEST_METHOD"],
    )
    return IncomingTask(
        queue_name=queue_name,
        name=environ.get(headers.task_name) or unnamed_task_name(queue_name, request),
        earlier_attempts=parse_count(environ.get(headers.execution_count)),
        request=request,
    )


def _event_route(path: str) -> tuple[str, str] | None:
    """``(channel, event)`` of ``/worker/push/<channel>/<event>`` (the path's bytes read as
    UTF-8, as webapp2 routes them), or ``None``."""
    if not path.startswith(_PUSH_PREFIX):
        return None
    if not path.isascii():
        path = path.encode("latin-1").decode("utf-8")
    parts = path[len(_PUSH_PREFIX) :].split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def _request_path(environ: dict[str, Any]) -> str:
    """The request's path as WebOb quotes it (for messages and log lines)."""
    return webob.BaseRequest(environ).path
