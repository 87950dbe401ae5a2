"""A stand-in for ``google.appengine.api.taskqueue``: ``add`` and its error names, onto the
configured backend. Differences: the default queue is ``pusher``; ``add`` returns a
:class:`pushqueue.tasks.Task`; ``transactional=True`` uses :mod:`pushqueue.outbox`; ``target``,
``retry_options`` and ``tag`` are not supported; a ``/worker/...`` task must be a POST."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .tasks import InvalidTaskError, QueueError, QueueUnavailable, Task, TaskAlreadyExistsError, build_task

Error = QueueError
TransientError = QueueUnavailable

__all__ = [
    "Error",
    "InvalidTaskError",
    "Task",
    "TaskAlreadyExistsError",
    "TransientError",
    "add",
]


def add(
    url: str | None = None,
    params: dict[str, Any] | None = None,
    payload: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    queue_name: str | None = None,
    name: str | None = None,
    countdown: float | None = None,
    eta: datetime | float | None = None,
    transactional: bool = False,
) -> Task:
    """Create a task, as ``google.appengine.api.taskqueue.add`` does."""
    from . import default_queue

    task = build_task(url, params, payload, headers, method, queue_name, name, countdown, eta)
    return default_queue().add(task, transactional=transactional)
