"""The worker: ``POST /worker/push/<channel>/<event>`` and ``POST /worker/batch``.

Only the queue may call them, and a header proves that only where nobody else can send it:

* ``X-AppEngine-*`` task headers count on App Engine (``GAE_ENV=standard``), which strips
  them from outside requests;
* ``X-CloudTasks-*`` headers count only with a verified OIDC token (``TASKS_OIDC_AUDIENCE``,
  :mod:`access.oidc`): ``Authorization: Bearer <ID token>``, the token Cloud Tasks sends
  to HTTP targets. A missing or unacceptable token gets 401 (403 for another account's),
  certificates that cannot be fetched 503; the refusal is logged (never the token);
* with ``ALLOW_UNVERIFIED_LOCAL_REQUESTS=1`` (``make dev``, the tests; refused when
  deployed) both are believed as they come.

Anything else gets 403 and triggers nothing, whatever it forges (queue name, execution
count). A body larger than any task can be (:data:`MAX_TASK_BODY_BYTES`) gets 413 without
being read whole. Form fields become a dict; any other body is the event data as it is (see
:mod:`pushqueue.wire`). :class:`pushqueue.worker.Worker` sends, parks and logs; the answer
is its ``http_status`` (2xx: forget the task; 5xx: retry it). A task the worker cannot
serve (any other URL under ``/worker/``, or another method than POST) is parked rather
than retried until it expires.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import webapp2

from access import oidc
from handlers.base import JsonHandler, form_fields, is_form
from handlers.body_limit import BodyTooLarge, read_body
from pushqueue import logs
from pushqueue.outcome import TaskRefused
from pushqueue.tasks import TaskRequest, parse_count
from pushqueue.wire import SOCKET_ID_HEADER, WORKER_BATCH_PATH, WORKER_PUSH_PATH
from pushqueue.worker import IncomingTask, Result, unnamed_task_name

if TYPE_CHECKING:
    from handlers.application import Services
    from settings import Settings

MAX_TASK_BODY_BYTES = 1024 * 1024  # no queue task is larger (Cloud Tasks' limit; the bundled queue: 100 KB)
KEPT_HEADERS = ("Content-Type", SOCKET_ID_HEADER)  # what a parked task needs to be replayed
_KEPT_ENVIRON_KEYS = tuple(
    (name, "CONTENT_TYPE" if name == "Content-Type" else "HTTP_" + name.upper().replace("-", "_"))
    for name in KEPT_HEADERS
)


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


def routes(services: Services) -> list[webapp2.Route]:
    """The worker's routes: one event, a batch, and any other ``/worker/`` URL (parked)."""
    return [
        webapp2.Route(f"{WORKER_PUSH_PATH}/<channel>/<event>", WorkerPushHandler),
        webapp2.Route(WORKER_BATCH_PATH, WorkerBatchHandler),
        webapp2.Route("/worker/<:.*>", UnknownTaskHandler),
    ]


class QueueTaskHandler(JsonHandler):
    """Refuses requests that do not prove they come from a queue; reads the task's headers.

    Any method reaches :meth:`dispatch`: a task that is not a POST is parked (a subclass
    serves ``post`` only)."""

    task: IncomingTask

    def dispatch(self) -> Any:
        request = self.request
        environ = request.environ
        verifier = self.services.oidc_verifier
        if verifier is not None and not self.token_accepted(verifier):
            return None
        headers = proven_headers(environ, self.services.settings, verifier)
        if headers is None:
            return self.send_error(403, UNPROVEN)
        try:
            body = read_body(request, MAX_TASK_BODY_BYTES)
        except BodyTooLarge as exc:
            return self.send_error(413, str(exc))
        url = environ.get("RAW_URI") or request.path_qs  # gunicorn's RAW_URI: as it was sent
        self.task = incoming_task(environ, headers, url, body)
        if request.method != "POST":
            return self.refuse(f"the worker serves POST only; a {request.method} task cannot be served")
        return super().dispatch()

    def refuse(self, reason: str) -> None:
        """Park the task: it can never be served (``reason`` says why)."""
        self.respond(self.services.worker.refuse(self.task, TaskRefused(reason)))

    def token_accepted(self, verifier: oidc.OidcVerifier) -> bool:
        """Check the request's OIDC token; answer and log the refusal when it fails."""
        try:
            verifier.verify(self.request.headers.get("Authorization"))
            return True
        except oidc.TokenRefused as exc:
            status, reason, detail = exc.status, str(exc), None
        except oidc.CertsUnavailable as exc:
            status, reason, detail = 503, "the token cannot be checked now", str(exc)
        logs.log(
            logging.WARNING,
            "worker request refused",
            path=self.request.path,
            task=self.request.environ.get(CLOUD_TASKS_HEADERS.task_name),
            status=status,
            reason=reason,
            error=detail,
        )
        if status == 401:
            self.response.headers["WWW-Authenticate"] = "Bearer"
        self.send_error(status, reason)
        return False

    def respond(self, result: Result) -> None:
        """Tell the queue how the attempt ended: ``{"outcome", "error"?}`` with its status."""
        self.send_json(result.http_status, answer(result))


class WorkerPushHandler(QueueTaskHandler):
    """``POST /worker/push/<channel>/<event>``: one event, form fields or the body as data."""

    def post(self, channel: str, event: str) -> None:
        task, worker = self.task, self.services.worker
        body = task.request.body
        try:
            data = form_fields(body) if is_form(self.request) else body
        except ValueError as exc:
            return self.refuse(f"the form fields are not UTF-8: {exc}")
        socket_id = task.request.header(SOCKET_ID_HEADER)
        self.respond(worker.deliver(task, channel, event, data, socket_id))


class WorkerBatchHandler(QueueTaskHandler):
    """``POST /worker/batch``: a JSON list of events, 10 per Pusher call."""

    def post(self) -> None:
        self.respond(self.services.worker.deliver_batch(self.task))


class UnknownTaskHandler(QueueTaskHandler):
    """Any other ``/worker/`` URL: no worker serves it, so the task is parked."""

    def post(self, path: str) -> None:
        self.refuse(f"no worker serves {self.request.path} (expected {WORKER_PUSH_PATH}/<channel>/<event>)")


def _proven_headers(environ: dict[str, Any], *, app_engine: bool, cloud_tasks: bool) -> QueueHeaders | None:
    """The task headers this request may be believed on (``app_engine`` / ``cloud_tasks``:
    whether those are proven here), or ``None`` when it proves no queue sent it."""
    if app_engine and environ.get(APP_ENGINE_HEADERS.queue):
        return APP_ENGINE_HEADERS
    if cloud_tasks and environ.get(CLOUD_TASKS_HEADERS.queue):
        return CLOUD_TASKS_HEADERS
    return None


def proven_headers(
    environ: dict[str, Any], settings: Settings, verifier: oidc.OidcVerifier | None
) -> QueueHeaders | None:
    """The task headers this request may be believed on with these settings (``verifier``:
    the OIDC check, already passed), or ``None`` when it proves no queue sent it."""
    return _proven_headers(
        environ,
        app_engine=settings.app_engine_standard or settings.local_development,
        cloud_tasks=verifier is not None or settings.local_development,
    )


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


def answer(result: Result) -> dict[str, str]:
    """What the queue is told of an attempt: ``{"outcome", "error"?}`` (its status apart)."""
    told = {"outcome": result.outcome.value}
    if result.error:
        told["error"] = result.error
    return told
