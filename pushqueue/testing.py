"""A fake queue for your tests (:func:`fake_queue`): the default queue's tasks kept in memory, no
emulator; events checked as for real, ``transactional=True`` ones kept at once. Example: README."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, unquote

from pusherlib import Pusher

from . import NotConfigured, configure, default_queue, wire
from .events import EventQueue
from .tasks import FORM_CONTENT_TYPE, TaskAlreadyExistsError, TaskRequest

_ANY = object()


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One event a queued task would send: ``data`` is what the worker would send (the text
    Pusher receives, or a dict of form fields)."""

    channel: str
    event: str
    data: Any
    socket_id: str | None
    task: str
    queue_name: str | None
    eta: float | None

    def matches(self, data: Any) -> bool:
        """Whether ``data`` is this event's data: as text, or as the JSON value it encodes."""
        if data is _ANY or data == self.data:
            return True
        try:
            return isinstance(self.data, str) and not isinstance(data, str) and json.loads(self.data) == data
        except ValueError:
            return False


class FakeQueue:
    """A queue backend keeping its tasks in memory, with assertions about their events."""

    def __init__(self) -> None:
        self.tasks: list[TaskRequest] = []
        self.parked: list[tuple[str, TaskRequest]] = []

    def add(self, task: TaskRequest) -> str:
        """Keep ``task``; a name given before is refused, as the real queues refuse it."""
        name = task.name or uuid.uuid4().hex
        if any(kept.name == name for kept in self.tasks):
            raise TaskAlreadyExistsError(f"a task named {name} was added before")
        self.tasks.append(replace(task, name=name))
        return name

    def park(self, task: TaskRequest, name: str) -> None:
        """Keep a parked task."""
        self.parked.append((name, task))

    @property
    def events(self) -> list[QueuedEvent]:
        """Every event the kept tasks for the worker carry, in the order queued."""
        return [event for task in self.tasks for event in _events_of(task)]

    def pushed(self, channel: str | None = None, event: str | None = None) -> list[QueuedEvent]:
        """The queued events on ``channel`` named ``event`` (``None``: any)."""
        return [e for e in self.events if channel in (None, e.channel) and event in (None, e.event)]

    def assert_pushed(self, channel: str, event: str, data: Any = _ANY, *, times: int | None = None) -> None:
        """Fail unless ``event`` was queued on ``channel`` (with ``data``, ``times`` times)."""
        found = [e for e in self.pushed(channel, event) if e.matches(data)]
        if not found or (times is not None and len(found) != times):
            wanted = "" if data is _ANY else f" with data {data!r}"
            count = "" if times is None else f" {times} time(s)"
            raise AssertionError(
                f"expected {event!r} on {channel!r}{wanted}{count}; queued: {self._summary()}"
            )

    def assert_not_pushed(self, channel: str | None = None, event: str | None = None) -> None:
        """Fail if an event matching ``channel`` and ``event`` (``None``: any) was queued."""
        if self.pushed(channel, event):
            raise AssertionError(f"expected no such event; queued: {self._summary()}")

    def assert_nothing_pushed(self) -> None:
        """Fail if any task was queued."""
        if self.tasks:
            raise AssertionError(f"expected nothing queued; queued: {self._summary()}")

    def _summary(self) -> str:
        events = [f"{e.event!r} on {e.channel!r}: {e.data!r}" for e in self.events]
        others = [f"{task.method} {task.url}" for task in self.tasks if not _is_worker_task(task)]
        return "; ".join(events + others) or "nothing"


class _AtOnceOutbox:
    """Transactional tasks, kept at once (a fake has no transaction to wait for)."""

    def __init__(self, fake: FakeQueue):
        self.fake = fake

    def add_after_commit(self, requests: list[TaskRequest]) -> list[str]:
        return [self.fake.add(request) for request in requests]


@contextmanager
def fake_queue(queue: EventQueue | None = None) -> Iterator[FakeQueue]:
    """A :class:`FakeQueue` taking ``queue``'s tasks (default: pushqueue's default queue, or a
    new default queue when none is configured) for the block."""
    fake = FakeQueue()
    configured = None
    if queue is None:
        try:
            queue = default_queue()
        except NotConfigured:
            key = base64.b64encode(os.urandom(32)).decode("ascii")
            pusher = Pusher("1", "fake-key", "fake-secret", encryption_master_key_base64=key)
            queue = configured = EventQueue(fake, pusher.requests, queue_name="pusher")
            configure(queue)
    backend, outbox = queue.backend, queue.outbox
    queue.backend, queue.outbox = fake, _AtOnceOutbox(fake)  # type: ignore[assignment]
    try:
        yield fake
    finally:
        queue.backend, queue.outbox = backend, outbox
        if configured is not None:
            configure(None)


def _is_worker_task(task: TaskRequest) -> bool:
    return task.url == wire.WORKER_BATCH_PATH or task.url.startswith(wire.WORKER_PUSH_PATH + "/")


def _events_of(task: TaskRequest) -> list[QueuedEvent]:
    """The events ``task`` carries, as the worker reads them (none for other URLs)."""
    where = {"task": task.name or "", "queue_name": task.queue_name, "eta": task.eta}
    if task.url == wire.WORKER_BATCH_PATH:
        return [
            QueuedEvent(e["channel"], e["name"], e["data"], e.get("socket_id"), **where)
            for e in wire.parse_batch(task.body)
        ]
    if not task.url.startswith(wire.WORKER_PUSH_PATH + "/"):
        return []
    channel, _, event = task.url[len(wire.WORKER_PUSH_PATH) + 1 :].partition("?")[0].partition("/")
    content_type = (task.header("Content-Type") or "").split(";", 1)[0].strip()
    text = task.body.decode("utf-8")
    data: Any = text
    if content_type == FORM_CONTENT_TYPE:  # form fields: the first value of each, as the worker reads them
        data = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            data.setdefault(name, value)
    socket_id = task.header(wire.SOCKET_ID_HEADER)
    return [QueuedEvent(unquote(channel), unquote(event), data, socket_id, **where)]
