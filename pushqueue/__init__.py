"""pushqueue: Pusher events through App Engine task queues, never silently dropped.

Front-end code enqueues; the worker (``POST /worker/push/<channel>/<event>`` and
``POST /worker/batch``) triggers through pusherlib and tells the queue what to do::

    import pushqueue
    pushqueue.enqueue_event("my-channel", "my-event", {"message": "hello"})  # checked now

    from pushqueue import taskqueue          # instead of google.appengine.api.taskqueue
    taskqueue.add(url="/worker/push/my-channel/my-event", params={"msg": "hello"})

Modules: :mod:`~pushqueue.tasks` (the task, ``taskqueue.add`` rules, errors),
:mod:`~pushqueue.cloudtasks` and :mod:`~pushqueue.bundled` (the two backends, each
documenting how it parks and replays), :mod:`~pushqueue.events` (checking and queueing
events), :mod:`~pushqueue.wire` (how events travel in tasks), :mod:`~pushqueue.coalesce`
(one request's events in few tasks), :mod:`~pushqueue.outcome` (delivered / retried /
parked), :mod:`~pushqueue.worker`, :mod:`~pushqueue.tasklog` (recent outcomes),
:mod:`~pushqueue.logs` (Cloud Logging JSON lines), :mod:`~pushqueue.parking` (parked
events in Datastore), :mod:`~pushqueue.outbox` (events sent only if a transaction
commits), :mod:`~pushqueue.datastore` (the google-cloud-ndb client and context),
:mod:`~pushqueue.lazy` (the process's clients, made on first use).

It is a library: every object takes its configuration as arguments; it never reads the
environment or the app's settings. The module-level functions use the process's default
:class:`EventQueue`: the app sets it at start-up with :func:`configure`; elsewhere (a
script, a test) configure one first, or they raise :class:`NotConfigured`.
"""

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
