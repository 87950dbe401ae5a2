"""The Cloud Tasks backend: App Engine or HTTP-target tasks through ``google-cloud-tasks``.

With ``CLOUD_TASKS_EMULATOR_HOST`` set the client talks plain gRPC to the emulator;
otherwise it uses the application's default credentials. One client per process, made on
first use.

Parking: a parked task is created, with its whole request and the ``X-Pusher-Parked-*``
headers, in the parked queue (``parked_queue_name``, ``pusher-parked`` in the app), which this
backend pauses before every park so that nothing there is dispatched on its own. Listing
is ``ListTasks`` on that queue. Replaying is ``RunTask``: Cloud Tasks dispatches the task
to its worker URL even though the queue is paused; when the worker delivers it, the task
is deleted, otherwise it stays parked (the worker never re-parks or drops a task coming
from the parked queue, see :func:`pushqueue.outcome.classify`). The parked task keeps the
name of the original task, so parking the same task twice (an acknowledgement lost on the
way back to the queue) keeps one copy. ``queue.yaml`` gives the parked queue no retry or
age limit; Cloud Tasks still deletes any task after 31 days, the time an operator has.
The service account needs the Cloud Tasks Enqueuer role plus ``cloudtasks.queues.pause``,
``cloudtasks.tasks.list`` and ``cloudtasks.tasks.run`` (Cloud Tasks Admin covers them).

HTTP targets: with an :class:`HttpTarget` (the app makes one from ``TASKS_HTTP_TARGET_URL``
and ``TASKS_OIDC_SERVICE_ACCOUNT``), tasks are ``http_request`` tasks to the target's base URL
plus the task's path, with an ``oidc_token`` so that Cloud Tasks sends ``Authorization:
Bearer <ID token>`` for the service account; the worker checks it (``TASKS_OIDC_AUDIENCE``,
:mod:`pushqueue.oidc`). The creating account then also needs ``iam.serviceAccounts.actAs``
on that service account (Service Account User). Without one, tasks are App Engine tasks.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .tasks import (
    InvalidTaskError,
    ParkedTask,
    ParkedTaskNotFound,
    QueueUnavailable,
    TaskAlreadyExistsError,
    TaskRequest,
)

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """Where HTTP-target tasks go (``base_url``, an origin, + the task's path) and the token
    they carry."""

    base_url: str
    service_account_email: str
    audience: str

    def request(self, task: TaskRequest) -> dict[str, Any]:
        """The ``http_request`` of a task sending ``task``."""
        return {
            "http_method": task.method,
            "url": self.base_url + task.url,
            "headers": dict(task.headers),
            "body": task.body,
            "oidc_token": {"service_account_email": self.service_account_email, "audience": self.audience},
        }


class CloudTasksBackend:
    """Tasks in the Cloud Tasks queues of ``project`` / ``location``."""

    def __init__(
        self,
        project: str,
        location: str,
        *,
        queue_name: str,
        parked_queue_name: str,
        emulator_host: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_target: HttpTarget | None = None,
    ):
        self.project, self.location = project, location
        self.queue_name, self.parked_queue_name = queue_name, parked_queue_name
        self.emulator_host, self.timeout = emulator_host, timeout
        self.http_target = http_target
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The process's ``CloudTasksClient``."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        from google.cloud import tasks_v2

        if not self.emulator_host:
            return tasks_v2.CloudTasksClient()
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        channel = grpc.insecure_channel(self.emulator_host)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))

    def queue_path(self, queue: str | None) -> str:
        """The full resource name of ``queue`` (the default queue for ``None``)."""
        return f"projects/{self.project}/locations/{self.location}/queues/{queue or self.queue_name}"

    # -- the Backend interface ----------------------------------------------------------

    def add(self, task: TaskRequest) -> str:
        parent = self.queue_path(task.queue_name)
        message: dict[str, Any]
        if self.http_target is not None:
            message = {"http_request": self.http_target.request(task)}
        else:
            message = {
                "app_engine_http_request": {
                    "http_method": task.method,
                    "relative_uri": task.url,
                    "headers": dict(task.headers),
                    "body": task.body,
                }
            }
        if task.name:
            message["name"] = f"{parent}/tasks/{task.name}"
        if task.eta is not None:
            message["schedule_time"] = {"seconds": int(task.eta), "nanos": int(task.eta % 1 * 1e9)}
        created = self._call("create_task", parent=parent, task=message)
        return created.name.rsplit("/", 1)[-1]

    def park(self, task: TaskRequest, name: str) -> None:
        parked = self.queue_path(self.parked_queue_name)
        self._call("pause_queue", name=parked)
        with contextlib.suppress(TaskAlreadyExistsError):  # parked before: the ack was lost
            self.add(_renamed(task, self.parked_queue_name, name))

    def list_parked(self, limit: int) -> list[ParkedTask]:
        from google.cloud import tasks_v2

        request = {
            "parent": self.queue_path(self.parked_queue_name),
            "response_view": tasks_v2.Task.View.FULL,
            "page_size": min(limit, 1000),
        }
        parked: list[ParkedTask] = []
        pages = self._call("list_tasks", request=request)
        try:
            for task in pages:
                parked.append(_parked_task(task))
                if len(parked) >= limit:
                    break
        except _google_errors() as exc:
            raise QueueUnavailable(f"Cloud Tasks: {exc}") from None
        return parked

    def replay(self, name: str) -> None:
        from google.api_core import exceptions

        path = f"{self.queue_path(self.parked_queue_name)}/tasks/{name}"
        try:
            self._call("run_task", name=path)
        except QueueUnavailable as exc:
            if isinstance(exc.__cause__, exceptions.NotFound):
                raise ParkedTaskNotFound(f"no parked task named {name!r}") from None
            raise

    # -- plumbing ---------------------------------------------------------------------

    def _call(self, method: str, **arguments: Any) -> Any:
        from google.api_core import exceptions

        try:
            return getattr(self.client, method)(**arguments, retry=None, timeout=self.timeout)
        except exceptions.AlreadyExists as exc:
            raise TaskAlreadyExistsError(str(exc)) from exc
        except exceptions.InvalidArgument as exc:
            raise InvalidTaskError(str(exc)) from exc
        except _google_errors() as exc:
            raise QueueUnavailable(f"Cloud Tasks {method}: {exc}") from exc


def _google_errors() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    return (exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError)


def _renamed(task: TaskRequest, queue_name: str, name: str) -> TaskRequest:
    return TaskRequest(task.url, task.body, task.headers, task.method, queue_name, name)


def _parked_task(task: Any) -> ParkedTask:
    """A parked App Engine task, or HTTP-target task (its URL, on the origin, made relative)."""
    if "http_request" in task:
        http = task.http_request
        parts = urlsplit(http.url)
        url = parts.path + (f"?{parts.query}" if parts.query else "")
    else:
        http = task.app_engine_http_request
        url = http.relative_uri
    request = TaskRequest(
        url=url,
        body=bytes(http.body),
        headers=tuple(http.headers.items()),
        method=http.http_method.name,
    )
    return ParkedTask.from_request(task.name.rsplit("/", 1)[-1], request)
