"""Request-scoped coalescing: the events enqueued during one request become few tasks.

Inside a :func:`collecting` block (or a request served through
:class:`CoalescingMiddleware`), ``enqueue_event`` validates the event at once but only
collects it; at the end the collected events are flushed as tasks of at most 10 events
(one ``/batch_events`` call each) and at most ~90 KB (under the bundled queue's 100 KB).
A task of one event keeps the single-event URL. Each event's task name is known when it
is enqueued (names are made here), so a handler can answer with it before the flush.

The middleware flushes when the application starts its response: a success (status below
400) is sent only once its events are queued; if the queue cannot be reached, the response
becomes ``503`` with an error (nothing accepted that was not enqueued). An error
response (4xx or 5xx) drops the collected events with a log line, as the whole request
failed. An event enqueued after ``start_response`` (the scope is closed then) is queued at
once, as outside any scope, so every task name handed out is a task created.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import logs
from .tasks import QueueError

if TYPE_CHECKING:
    from .events import EventQueue

MAX_EVENTS_PER_TASK = 10  # one /batch_events call
MAX_TASK_BYTES = 90 * 1024  # the bundled task queue refuses push tasks above 100 KB


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and when an event's task goes: events of different placements never share a
    task. ``name`` fixes the task names (``<name>-0``, ``<name>-1``...: an idempotency key's)."""

    queue_name: str | None = None
    eta: float | None = None
    name: str | None = None


@dataclass
class Chunk:
    """The events of one future task."""

    name: str
    placement: Placement = Placement()
    events: list[dict[str, Any]] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    size: int = 2

    def has_room(self, encoded: bytes) -> bool:
        """Whether one more event (``encoded``) fits in this task."""
        return len(self.events) < MAX_EVENTS_PER_TASK and self.size + len(encoded) + 1 <= MAX_TASK_BYTES


class PendingEvents:
    """Events validated and waiting to be flushed, already split into tasks."""

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.closed = False  # flushed or dropped: events enqueued now are queued at once
        self._open: dict[Placement, Chunk] = {}  # the chunk taking each placement's next event
        self._named: dict[str, int] = {}  # chunks named so far, per name stem

    def __bool__(self) -> bool:
        return bool(self.chunks)

    def __len__(self) -> int:
        return sum(len(chunk.events) for chunk in self.chunks)

    def add(self, event: dict[str, Any], encoded: bytes, placement: Placement = Placement()) -> str:
        """Collect one event; return the name of the task that will carry it."""
        chunk = self._open.get(placement)
        if chunk is None or not chunk.has_room(encoded):
            chunk = self._open[placement] = Chunk(self._next_name(placement), placement)
            self.chunks.append(chunk)
        chunk.events.append(event)
        chunk.encoded.append(encoded)
        chunk.size += len(encoded) + 1
        return chunk.name

    def clear(self) -> None:
        """Forget every collected event."""
        self.chunks.clear()
        self._open.clear()

    def _next_name(self, placement: Placement) -> str:
        if placement.name is None:
            return uuid.uuid4().hex
        number = self._named.get(placement.name, 0)
        self._named[placement.name] = number + 1
        return f"{placement.name}-{number}"


_current: ContextVar[PendingEvents | None] = ContextVar("pushqueue_pending_events", default=None)


def current() -> PendingEvents | None:
    """The events being collected in this context, if a collecting scope is open."""
    pending = _current.get()
    return None if pending is None or pending.closed else pending


@contextmanager
def collecting(queue: EventQueue) -> Iterator[PendingEvents]:
    """Collect the events enqueued inside the block; flush them to ``queue`` at its end
    (not when it ends with an exception). A flush failure raises ``QueueError``."""
    pending = PendingEvents()
    token = _current.set(pending)
    try:
        yield pending
    finally:
        _current.reset(token)
    if pending:
        queue.flush(pending)


StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


ErrorAnswer = Callable[[str], tuple[list[tuple[str, str]], bytes]]


def plain_error(message: str) -> tuple[list[tuple[str, str]], bytes]:
    """The 503's headers and body: ``message`` as plain text."""
    body = message.encode("utf-8")
    return [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))], body


class CoalescingMiddleware:
    """Runs each request of ``app`` in its own collecting scope (see the module docstring);
    ``error_answer`` makes the 503's headers and body from its message (the app's: JSON)."""

    def __init__(self, app: WSGIApp, queue: EventQueue, *, error_answer: ErrorAnswer = plain_error):
        self.app, self.queue = app, queue
        self.error_answer = error_answer

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        pending = PendingEvents()
        failure: list[bytes] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            pending.closed = True  # from now on, events are queued at once
            refusal = self._settle(pending, status) if pending else None
            if refusal is not None:
                headers, body = self.error_answer(refusal)
                failure.append(body)
                status, exc_info = "503 Service Unavailable", None
            return start_response(status, headers, exc_info)

        token = _current.set(pending)
        try:
            body = self.app(environ, start)
        finally:
            _current.reset(token)
        if failure:
            if hasattr(body, "close"):
                body.close()
            return failure
        return body

    def _settle(self, pending: PendingEvents, status: str) -> str | None:
        """Queue ``pending`` for a successful response, drop it for a failed one; the message
        of the 503 that replaces the response when the queue cannot be reached."""
        try:
            if status[:1] not in "123":
                logs.log(
                    logging.WARNING, "events dropped: the request failed", events=len(pending), status=status
                )
                return None
            self.queue.flush(pending)
        except QueueError as exc:
            logs.log(logging.ERROR, "events not queued", events=len(pending), error=str(exc))
            return f"the queue cannot be reached: {exc}"
        finally:
            pending.clear()
        return None
