"""The Cloud Tasks emulator (``gcloud-tasks-emulator``), started by the tests on a free port.

It runs from its own virtualenv (``.venv-tasks-emulator``), creates the queues of the
repository's ``queue.yaml`` and POSTs each App Engine task to ``127.0.0.1:target_port``
with the ``X-AppEngine-*`` headers. It keeps tasks in memory, retries a failed task at
once (every ~0.1 s, no backoff) and honours pause/resume. Start it before the app, which
needs its address::

    app_port = free_port()
    with running_emulator(target_port=app_port) as emulator:
        env = {**emulator.app_env(), "PUSHER_URL": soketi.url}
        with running_app(env, port=app_port) as app:
            ...
            emulator.wait_until_empty("pusher")

:func:`tests.support.appserver.running_stack` does both.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from .processes import ROOT, ManagedProcess, free_port, wait_until

EMULATOR = ROOT / ".venv-tasks-emulator" / "bin" / "gcloud-tasks-emulator"
QUEUE_YAML = ROOT / "queue.yaml"


class TasksEmulator(ManagedProcess):
    """One emulator on ``127.0.0.1:port`` dispatching to ``127.0.0.1:target_port``."""

    def __init__(
        self,
        target_port: int,
        *,
        project: str = "test-project",
        location: str = "us-central1",
        port: int | None = None,
        queue_yaml: Path = QUEUE_YAML,
        name: str = "tasks-emulator",
    ):
        self.target_port, self.project, self.location = target_port, project, location
        port = port or free_port()
        argv = [
            str(EMULATOR),
            "start",
            "-p",
            str(port),
            "-t",
            str(target_port),
            "-H",
            "127.0.0.1",
            "-Q",
            str(queue_yaml),
            "-P",
            project,
            "-L",
            location,
        ]
        super().__init__(name, argv, {}, port)

    @property
    def host(self) -> str:
        """``host:port``, the value of ``CLOUD_TASKS_EMULATOR_HOST``."""
        return f"127.0.0.1:{self.port}"

    def app_env(self) -> dict[str, str]:
        """The environment that points the app at this emulator."""
        return {
            "TASKS_BACKEND": "cloudtasks",
            "CLOUD_TASKS_EMULATOR_HOST": self.host,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "TASKS_LOCATION": self.location,
        }

    @cached_property
    def client(self):
        """A ``tasks_v2.CloudTasksClient`` talking to this emulator."""
        import grpc
        from google.cloud import tasks_v2
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        channel = grpc.insecure_channel(self.host)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))

    def backend(self):
        """A :class:`pushqueue.cloudtasks.CloudTasksBackend` on this emulator's queues."""
        from pushqueue.cloudtasks import CloudTasksBackend

        return CloudTasksBackend(
            self.project,
            self.location,
            queue_name="pusher",
            parked_queue_name="pusher-parked",
            emulator_host=self.host,
        )

    def queue_path(self, queue: str) -> str:
        return self.client.queue_path(self.project, self.location, queue)

    def tasks(self, queue: str) -> list:
        """The tasks waiting in ``queue`` (the emulator keeps failed ones there to retry)."""
        return list(self.client.list_tasks(parent=self.queue_path(queue)))

    def is_paused(self, queue: str) -> bool:
        from google.cloud import tasks_v2

        return self.client.get_queue(name=self.queue_path(queue)).state == tasks_v2.Queue.State.PAUSED

    def pause(self, queue: str) -> None:
        self.client.pause_queue(name=self.queue_path(queue))

    def resume(self, queue: str) -> None:
        self.client.resume_queue(name=self.queue_path(queue))

    def wait_until_empty(self, queue: str, timeout: float = 20) -> None:
        """Wait until every task of ``queue`` has been dispatched and acknowledged."""
        wait_until(lambda: not self.tasks(queue), timeout, f"queue {queue} empty")

    def stop(self) -> None:
        if "client" in self.__dict__:
            self.client.transport.close()
            del self.__dict__["client"]
        super().stop()


def running_emulator(target_port: int, **options) -> TasksEmulator:
    """A :class:`TasksEmulator` (options as its constructor's) for a ``with`` block: started
    on entry, stopped on exit."""
    return TasksEmulator(target_port, **options)
