"""A stand-in for ``google.appengine.api.taskqueue``: ``add`` and its error names.

Code written for the bundled API runs with one changed import::

    from pushqueue import taskqueue
    taskqueue.add(url="/worker/push/channel/event", params={"msg": "Hello world!"})

The task goes to the configured backend (Cloud Tasks or the bundled queue). Differences:
the default queue is ``pusher`` (``TASKS_QUEUE``), not ``default``; ``add`` returns a
:class:`pushqueue.tasks.Task` with ``name``, ``queue_name``, ``url``, ``method``, ``eta``;
``target``, ``retry_options``, ``transactional`` and ``tag`` are not supported; a task for
the worker (``/worker/...``) must be a POST (``InvalidTaskError`` otherwise). The default
queue is the one the app configured (:func:`pushqueue.configure`).
"""

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
) -> Task:
    """Create a task, as ``google.appengine.api.taskqueue.add`` does."""
    from . import default_queue

    return default_queue().add(
        build_task(url, params, payload, headers, method, queue_name, name, countdown, eta)
    )
