"""The Cloud Tasks backend: App Engine or HTTP-target tasks (with an :class:`HttpTarget`: an
OIDC token the worker checks) through ``google-cloud-tasks``; with ``CLOUD_TASKS_EMULATOR_HOST``
the emulator, where this backend refuses a repeated task name as Cloud Tasks does. Parked tasks
go to :mod:`pushqueue.parking`; see docs/operations.md."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .lazy import OnFirstUse
from .tasks import InvalidTaskError, QueueRefused, QueueUnavailable, TaskAlreadyExistsError, TaskRequest

if TYPE_CHECKING:
    from .parking import ParkingStore

DEFAULT_TIMEOUT = 10.0
EMULATOR_NAMES = 100_000


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
        parking: ParkingStore,
        emulator_host: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_target: HttpTarget | None = None,
    ):
        self.project, self.location = project, location
        self.queue_name, self.parking = queue_name, parking
        self.emulator_host, self.timeout = emulator_host, timeout
        self.http_target = http_target
        self._client: OnFirstUse[Any] = OnFirstUse(self._make_client)
        self._emulator_names: OrderedDict[str, None] = OrderedDict()
        self._emulator_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The process's ``CloudTasksClient``."""
        return self._client.get()

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
        if not (task.name and self.emulator_host):
            return self._call("create_task", parent=parent, task=message).name.rsplit("/", 1)[-1]
        self._reserve_name(message["name"])
        try:
            self._call("create_task", parent=parent, task=message)
        except BaseException:
            with self._emulator_lock:
                self._emulator_names.pop(message["name"], None)
            raise
        return task.name

    def park(self, task: TaskRequest, name: str) -> None:
        self.parking.park(task, name)

    def _reserve_name(self, name: str) -> None:
        """Refuse a name given before, as Cloud Tasks does (the emulator does not)."""
        with self._emulator_lock:
            if name in self._emulator_names:
                raise TaskAlreadyExistsError(f"a task named {name} was created before")
            self._emulator_names[name] = None
            if len(self._emulator_names) > EMULATOR_NAMES:
                self._emulator_names.popitem(last=False)

    # -- plumbing ---------------------------------------------------------------------

    def _call(self, method: str, **arguments: Any) -> Any:
        from google.api_core import exceptions

        try:
            return getattr(self.client, method)(**arguments, retry=None, timeout=self.timeout)
        except exceptions.AlreadyExists as exc:
            raise TaskAlreadyExistsError(str(exc)) from exc
        except exceptions.InvalidArgument as exc:
            raise InvalidTaskError(str(exc)) from exc
        except (exceptions.NotFound, exceptions.FailedPrecondition) as exc:
            # No such queue (the emulator says FailedPrecondition), or one a deploy of
            # queue.yaml disabled: refused until an operator changes the queues.
            raise QueueRefused(f"Cloud Tasks {method}: {exc}") from exc
        except _google_errors() as exc:
            raise QueueUnavailable(f"Cloud Tasks {method}: {exc}") from exc


def _google_errors() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    return (exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError)
