"""The bundled-services backend, ``google.appengine.api.taskqueue`` (``TASKS_BACKEND=taskqueue``;
needs ``app_engine_apis: true``). Parked tasks go to :mod:`pushqueue.parking`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .tasks import InvalidTaskError, QueueRefused, QueueUnavailable, TaskAlreadyExistsError, TaskRequest

if TYPE_CHECKING:
    from .parking import ParkingStore


class BundledTaskqueueBackend:
    """Tasks in App Engine's bundled task queue."""

    def __init__(self, *, queue_name: str, parking: ParkingStore):
        self.queue_name, self.parking = queue_name, parking

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
        self.parking.park(task, name)


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Raise the bundled API's errors as :class:`~pushqueue.tasks.QueueError` subclasses: a
    queue that does not exist is refused for good (:class:`~pushqueue.tasks.QueueRefused`)."""
    from google.appengine.api.taskqueue import taskqueue
    from google.appengine.runtime import apiproxy_errors

    try:
        yield
    except (taskqueue.TaskAlreadyExistsError, taskqueue.TombstonedTaskError) as exc:
        raise TaskAlreadyExistsError(str(exc) or type(exc).__name__) from exc
    except (taskqueue.InvalidTaskError, taskqueue.InvalidQueueModeError) as exc:
        raise InvalidTaskError(str(exc) or type(exc).__name__) from exc
    except (taskqueue.UnknownQueueError, taskqueue.InvalidQueueError) as exc:
        raise QueueRefused(f"taskqueue: {type(exc).__name__} {exc}".rstrip()) from exc
    except (taskqueue.Error, apiproxy_errors.Error) as exc:
        raise QueueUnavailable(f"taskqueue: {type(exc).__name__} {exc}".rstrip()) from exc
