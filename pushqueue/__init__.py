"""pushqueue: Pusher events through App Engine task queues, never silently dropped.

Front-end code enqueues (``enqueue_event``, or ``pushqueue.taskqueue.add`` in place of the
bundled API); the worker triggers through pusherlib and delivers, retries or parks. A library:
configuration comes as arguments; the module-level functions use the default
:class:`EventQueue` set by :func:`configure`, else raise :class:`NotConfigured`."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from . import coalesce
from .coalesce import CoalescingMiddleware, PendingEvents
from .events import EventQueue
from .outbox import NotInTransaction
from .outcome import Outcome, classify
from .tasks import (
    InvalidTaskError,
    ParkedTask,
    ParkedTaskNotFound,
    QueueError,
    QueueUnavailable,
    Task,
    TaskAlreadyExistsError,
)

__all__ = [
    "CoalescingMiddleware",
    "EventQueue",
    "InvalidTaskError",
    "NotConfigured",
    "NotInTransaction",
    "Outcome",
    "ParkedTask",
    "ParkedTaskNotFound",
    "QueueError",
    "QueueUnavailable",
    "Task",
    "TaskAlreadyExistsError",
    "classify",
    "collecting",
    "configure",
    "default_queue",
    "enqueue_event",
]

_default: EventQueue | None = None


class NotConfigured(RuntimeError):
    """No default :class:`EventQueue`: :func:`configure` was not called in this process."""


def configure(queue: EventQueue | None) -> None:
    """Make ``queue`` the process's default (``None``: none any more)."""
    global _default
    _default = queue


def default_queue() -> EventQueue:
    """The process's default :class:`EventQueue`; :class:`NotConfigured` when there is none."""
    if _default is None:
        raise NotConfigured(
            "pushqueue has no default queue: the app sets it at start-up; elsewhere call "
            "pushqueue.configure(EventQueue(backend, pusher.requests, queue_name='pusher')) first"
        )
    return _default


def enqueue_event(
    channels: str | Iterable[str],
    event: str,
    data: Any,
    socket_id: str | None = None,
    transactional: bool = False,
    *,
    countdown: float | None = None,
    eta: datetime | float | None = None,
    queue_name: str | None = None,
    idempotency_key: str | None = None,
) -> str:
    """Check and queue a Pusher event on the default queue (see :meth:`EventQueue.enqueue_event`);
    return the (first) task's name."""
    return default_queue().enqueue_event(
        channels,
        event,
        data,
        socket_id,
        transactional=transactional,
        countdown=countdown,
        eta=eta,
        queue_name=queue_name,
        idempotency_key=idempotency_key,
    )


def collecting() -> AbstractContextManager[PendingEvents]:
    """Collect the events enqueued in the block into few tasks (see :mod:`pushqueue.coalesce`)."""
    return coalesce.collecting(default_queue())
