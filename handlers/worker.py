"""The worker: ``POST /worker/push/<channel>/<event>`` and ``POST /worker/batch``.

Only the queue may call them: a request without ``X-AppEngine-QueueName`` (App Engine
strips it from outside requests) or ``X-CloudTasks-QueueName`` gets 403 and triggers
nothing. Form fields become a dict; any other body is the event data as it is (see
:mod:`pushqueue.wire`). :class:`pushqueue.worker.Worker` sends, parks and logs; the answer
is its ``http_status`` (2xx: forget the task; 5xx: retry it). A task for any other URL
under ``/worker/`` cannot be served: it is parked rather than retried until it expires.

With ``TASKS_OIDC_AUDIENCE`` set, the worker also requires ``Authorization: Bearer <ID
token>``, the token Cloud Tasks sends to HTTP targets (see :mod:`pushqueue.oidc`): a
missing or unacceptable token gets 401 (403 for another account's), certificates that
cannot be fetched 503; the refusal is logged (never the token) and nothing is triggered.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import webapp2

from handlers.base import JsonHandler, form_fields, is_form
from pushqueue import logs, oidc
from pushqueue.tasks import TaskRequest
from pushqueue.wire import SOCKET_ID_HEADER, WORKER_BATCH_PATH, WORKER_PUSH_PATH
from pushqueue.worker import IncomingTask, Result

if TYPE_CHECKING:
    from handlers.application import Services

# The queue's headers, as WSGI environ keys (read from the environ: it is the cheapest way).
QUEUE_HEADERS = ("HTTP_X_APPENGINE_QUEUENAME", "HTTP_X_CLOUDTASKS_QUEUENAME")
TASK_NAME_HEADERS = ("HTTP_X_APPENGINE_TASKNAME", "HTTP_X_CLOUDTASKS_TASKNAME")
RETRY_COUNT_HEADERS = ("HTTP_X_APPENGINE_TASKRETRYCOUNT", "HTTP_X_CLOUDTASKS_TASKRETRYCOUNT")
KEPT_HEADERS = ("Content-Type", SOCKET_ID_HEADER)  # what a parked task needs to be replayed


def routes(services: Services) -> list[webapp2.Route]:
    """The worker's routes: one event, a batch, and any other ``/worker/`` URL (parked)."""
    return [
        webapp2.Route(f"{WORKER_PUSH_PATH}/<channel>/<event>", WorkerPushHandler, methods=["POST"]),
        webapp2.Route(WORKER_BATCH_PATH, WorkerBatchHandler, methods=["POST"]),
        webapp2.Route("/worker/<:.*>", UnknownTaskHandler),
    ]


class QueueTaskHandler(JsonHandler):
    """Refuses requests that do not come from a queue; reads the task's headers."""

    task: IncomingTask

    def dispatch(self) -> Any:
        request = self.request
        environ = request.environ
        verifier = self.services.oidc_verifier
        if verifier is not None and not self.token_accepted(verifier):
            return None
        queue = _first(environ, QUEUE_HEADERS)
        if not queue:
            return self.send_error(403, "only the task queue may call the worker")
        retry_count = _first(environ, RETRY_COUNT_HEADERS)
        headers = request.headers
        self.task = IncomingTask(
            queue_name=queue.rsplit("/", 1)[-1],  # the emulator sends the queue's full path
            name=_first(environ, TASK_NAME_HEADERS) or "unnamed",
            retry_count=int(retry_count) if retry_count and retry_count.isdigit() else 0,
            request=TaskRequest(
                url=environ.get("RAW_URI") or request.path_qs,  # gunicorn's RAW_URI: as it was sent
                body=request.body_file.read(),
                headers=tuple((name, headers[name]) for name in KEPT_HEADERS if name in headers),
                method=request.method,
            ),
        )
        return super().dispatch()

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
            task=_first(self.request.environ, TASK_NAME_HEADERS),
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
        answer = {"outcome": result.outcome.value}
        if result.error:
            answer["error"] = result.error
        self.send_json(result.http_status, answer)


class WorkerPushHandler(QueueTaskHandler):
    """``POST /worker/push/<channel>/<event>``: one event, form fields or the body as data."""

    def post(self, channel: str, event: str) -> None:
        task, worker = self.task, self.services.worker
        body = task.request.body
        try:
            data = form_fields(body) if is_form(self.request) else body
        except ValueError as exc:
            return self.respond(worker.refuse(task, exc))
        socket_id = task.request.header(SOCKET_ID_HEADER)
        self.respond(worker.deliver(task, channel, event, data, socket_id))


class WorkerBatchHandler(QueueTaskHandler):
    """``POST /worker/batch``: a JSON list of events, 10 per Pusher call."""

    def post(self) -> None:
        self.respond(self.services.worker.deliver_batch(self.task))


class UnknownTaskHandler(QueueTaskHandler):
    """Any other ``/worker/`` URL: no worker serves it, so the task is parked."""

    def post(self, path: str) -> None:
        error = ValueError(
            f"no worker serves {self.request.path} (expected {WORKER_PUSH_PATH}/<channel>/<event>)"
        )
        self.respond(self.services.worker.refuse(self.task, error))


def _first(environ: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None
