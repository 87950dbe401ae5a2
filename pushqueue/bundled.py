"""The bundled-services backend: ``google.appengine.api.taskqueue`` (``TASKS_BACKEND=taskqueue``).

Needs ``app_engine_apis: true`` in ``app.yaml`` (the app is then wrapped with
``wrap_wsgi_app``); in tests, the App Engine testbed's taskqueue stub.

Parking: the bundled API can neither pause nor list a push queue, so a parked task is a
pull task in ``pusher-parked-pull`` (``settings.parked_pull_queue_name``, ``mode: pull`` in
``queue.yaml``) whose payload is a JSON record of the whole request (URL, method, headers
with the ``X-Pusher-Parked-*`` notes, body in base64); it keeps the original task's name,
so parking twice keeps one copy. Listing leases the pull tasks for a moment and releases
them at once. Replaying adds the original request as a new push task on ``pusher`` (with
a fresh retry budget) and deletes the pull task. Pull tasks live until deleted.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from .tasks import (
    InvalidTaskError,
    ParkedTask,
    ParkedTaskNotFound,
    QueueUnavailable,
    TaskAlreadyExistsError,
    TaskRequest,
)

LEASE_SECONDS = 30
MAX_LEASED = 1000  # the bundled API's limit per lease


class BundledTaskqueueBackend:
    """Tasks in App Engine's bundled task queue."""

    def __init__(self, *, queue_name: str, parked_pull_queue_name: str):
        self.queue_name, self.parked_pull_queue_name = queue_name, parked_pull_queue_name

    def add(self, task: TaskRequest) -> str:
        from google.appengine.api import taskqueue

        eta = datetime.fromtimestamp(task.eta, UTC) if task.eta is not None else None
        with _translated_errors():
            added = taskqueue.Task(
                payload=task.body or None,
                url=task.url,
                method=task.method,
                headers=dict(task.headers),
                name=task.name,
                eta=eta,
            ).add(queue_name=task.queue_name or self.queue_name)
        return added.name

    def park(self, task: TaskRequest, name: str) -> None:
        from google.appengine.api import taskqueue

        record = {
            "url": task.url,
            "method": task.method,
            "headers": dict(task.headers),
            "body": base64.b64encode(task.body).decode("ascii"),
        }
        pull_task = taskqueue.Task(payload=json.dumps(record).encode("utf-8"), method="PULL", name=name)
        with contextlib.suppress(TaskAlreadyExistsError), _translated_errors():
            self._parked_queue().add(pull_task)  # already there: parked before, the ack was lost

    def list_parked(self, limit: int) -> list[ParkedTask]:
        leased = self._lease(min(limit, MAX_LEASED))
        self._release(leased)
        return [_parked_task(task) for task in leased]

    def replay(self, name: str) -> None:
        leased = self._lease(MAX_LEASED)
        found = next((task for task in leased if task.name == name), None)
        try:
            if found is None:
                raise ParkedTaskNotFound(f"no parked task named {name!r}")
            self.add(_parked_task(found).original_request())
            with _translated_errors():
                self._parked_queue().delete_tasks(found)
        finally:
            self._release([task for task in leased if task is not found])

    # -- plumbing ---------------------------------------------------------------------

    def _parked_queue(self) -> Any:
        from google.appengine.api import taskqueue

        return taskqueue.Queue(self.parked_pull_queue_name)

    def _lease(self, count: int) -> list[Any]:
        with _translated_errors():
            return self._parked_queue().lease_tasks(LEASE_SECONDS, count)

    def _release(self, tasks: list[Any]) -> None:
        queue = self._parked_queue()
        with _translated_errors():
            for task in tasks:
                queue.modify_task_lease(task, 0)


def _parked_task(pull_task: Any) -> ParkedTask:
    record = json.loads(pull_task.payload)
    request = TaskRequest(
        url=record["url"],
        body=base64.b64decode(record["body"]),
        headers=tuple(record["headers"].items()),
        method=record["method"],
    )
    return ParkedTask.from_request(pull_task.name, request)


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Raise the bundled API's errors as :class:`~pushqueue.tasks.QueueError` subclasses."""
    from google.appengine.api.taskqueue import taskqueue
    from google.appengine.runtime import apiproxy_errors

    try:
        yield
    except (taskqueue.TaskAlreadyExistsError, taskqueue.TombstonedTaskError) as exc:
        raise TaskAlreadyExistsError(str(exc) or type(exc).__name__) from exc
    except (taskqueue.InvalidTaskError, taskqueue.InvalidQueueModeError) as exc:
        raise InvalidTaskError(str(exc) or type(exc).__name__) from exc
    except (taskqueue.Error, apiproxy_errors.Error) as exc:
        raise QueueUnavailable(f"taskqueue: {type(exc).__name__} {exc}".rstrip()) from exc
