"""Send a task's events to Pusher and settle the task: classified (:mod:`.outcome`), parked
if it must be, logged and noted in the task log; the :class:`Result` says what the queue
hears. The rules (attempts, parking names, batches, a shutdown): docs/worker.md.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from pusherlib import Pusher, PusherError
from pusherlib.validation import MAX_BATCH_SIZE

from . import logs, tasklog, wire
from .outcome import Interrupted, Outcome, TaskRefused, classify, is_permanent, retry_status
from .tasks import TASK_NAME, Backend, QueueError, QueueRefused, TaskRequest, parked_request

T = TypeVar("T")
MAX_TASK_NAME = 500  # Cloud Tasks' and the bundled queue's limit
MAX_LOGGED_FIELD = 8192  # characters of a URL or header value in a log line
LOGGED_BODY_CHARS = 100_000  # base64 characters per log line (Cloud Logging: 256 KB an entry)
NOT_SENT = RuntimeError("not sent: an earlier chunk of the task must be retried")
_LEVELS = {
    Outcome.DELIVERED: logging.INFO,
    Outcome.RETRIED: logging.WARNING,
    Outcome.PARKED: logging.ERROR,
    Outcome.LOGGED: logging.ERROR,
}


@dataclass(frozen=True, slots=True)
class IncomingTask:
    """A task as the worker received it: the queue's headers and the request to park."""

    queue_name: str
    name: str
    earlier_attempts: int  # that reached the app: the queue's TaskExecutionCount
    request: TaskRequest


@dataclass(frozen=True, slots=True)
class Result:
    """How a task attempt ended, and the HTTP status that tells the queue."""

    outcome: Outcome
    http_status: int
    pusher_status: int | None = None
    error: str | None = None


class Worker:
    """Delivers tasks' events through ``pusher`` (inside ``async_context``, an NDB context, if
    given), parks through ``backend``; ``loop_pusher``: an asyncio client for :meth:`deliver_on_loop`."""

    def __init__(
        self,
        pusher: Pusher,
        backend: Backend,
        *,
        max_attempts: int,
        async_context: Callable[[], AbstractContextManager[Any]] | None = None,
        loop_pusher: Pusher | None = None,
    ):
        self.pusher, self.backend = pusher, backend
        self.max_attempts = max_attempts
        self.async_context = async_context
        self.loop_pusher = loop_pusher

    def deliver(
        self, task: IncomingTask, channel: str, event: str, data: Any, socket_id: str | None
    ) -> Result:
        """Trigger one event: ``data`` is sent as pusherlib sends it, bytes as their UTF-8 text."""
        data = _event_data(data)
        if isinstance(data, TaskRefused):
            return self.refuse(task, data)
        error = None
        try:
            if self.async_context is None:
                self.pusher.trigger(channel, event, data, socket_id)
            else:
                with self.async_context():
                    self.pusher.trigger_async(channel, event, data, socket_id).result()
        except Exception as exc:
            error = exc
        return self._settle(task, error, channel, event, 1, task.request)

    async def deliver_on_loop(
        self,
        task: IncomingTask,
        channel: str,
        event: str,
        data: Any,
        socket_id: str | None,
        blocking: Callable[[Callable[[], Result]], Awaitable[Result]],
    ) -> Result:
        """:meth:`deliver` on the event loop through ``loop_pusher``, parking through ``blocking``
        (a call on a thread); cancelled, it still settles: the trigger retried, a park awaited."""
        assert self.loop_pusher is not None, "deliver_on_loop needs a loop_pusher"
        data = _event_data(data)
        if isinstance(data, TaskRefused):
            return await to_the_end(blocking(functools.partial(self.refuse, task, data)))
        error: BaseException | None = None
        try:
            await self.loop_pusher.trigger_async(channel, event, data, socket_id)
        except asyncio.CancelledError:
            _uncancel()
            error = Interrupted("the trigger was interrupted: the server is stopping")
        except Exception as exc:
            error = exc
        settle = functools.partial(self._settle, task, error, channel, event, 1, task.request)
        if self._outcome(task, error) is Outcome.PARKED:
            return await to_the_end(blocking(settle))
        return settle()

    def deliver_batch(self, task: IncomingTask) -> Result:
        """Trigger the events of a batch task, 10 per call."""
        try:
            events = wire.parse_batch(task.request.body)
        except ValueError as exc:
            return self.refuse(task, TaskRefused(str(exc)))
        starts = range(0, len(events), MAX_BATCH_SIZE)
        chunks = [events[start : start + MAX_BATCH_SIZE] for start in starts]
        pieces = self._apart(task, list(zip(starts, chunks, self._send_chunks(task, chunks), strict=True)))
        if len(pieces) == 1:  # one call for the whole task: it is settled as it came
            channel, event = _first_names(events)
            error = pieces[0][2]
            return self._settle(task, error, channel, event, len(events), task.request)
        result, again, first_error = Result(Outcome.DELIVERED, 200, 200), [], None
        for start, chunk, error in pieces:
            if error is NOT_SENT or self._outcome(task, error) is Outcome.RETRIED:
                again.extend(chunk)
                first_error = first_error or error
                continue
            channel, event = _first_names(chunk)
            park_as = wire.batch_task([wire.encode_event(e) for e in chunk])
            settled = self._settle(task, error, channel, event, len(chunk), park_as, start)
            if settled.outcome is Outcome.RETRIED:  # it could not be parked: retry the whole task
                return settled
            if settled.outcome is not Outcome.DELIVERED:
                result = settled
        if len(again) == len(events):
            channel, event = _first_names(events)
            return self._settle(task, first_error, channel, event, len(events), task.request)
        if again:
            requeued = self._requeue(task, again, first_error)
            return result if requeued.outcome is Outcome.DELIVERED else requeued
        return result

    def refuse(self, task: IncomingTask, error: TaskRefused) -> Result:
        """Settle a task that can never be served (``error`` says why): it is parked."""
        return self._settle(task, error, "", "", 0, task.request)

    def _apart(self, task: IncomingTask, pieces: list[Piece]) -> list[Piece]:
        """``pieces`` (first index, events, error), each chunk of several events that Pusher
        refused for good replaced by its events sent again one at a time."""
        apart: list[Piece] = []
        for start, chunk, error in pieces:
            if len(chunk) > 1 and error is not None and error is not NOT_SENT and is_permanent(error):
                singles = [[event] for event in chunk]
                errors = self._send_chunks(task, singles)
                apart.extend(zip(range(start, start + len(chunk)), singles, errors, strict=True))
            else:
                apart.append((start, chunk, error))
        return apart

    def _send_chunks(self, task: IncomingTask, chunks: list[list[Any]]) -> list[Any]:
        """Send each chunk with one ``/batch_events`` call: the error of each (``None`` when
        delivered, :data:`NOT_SENT` for those after a retried one when sent in order)."""
        if self.async_context is not None:
            with self.async_context():
                started = [_call(self.pusher.trigger_batch_async, chunk) for chunk in chunks]
                return [error if future is None else _call(future.result)[1] for future, error in started]
        errors: list[Any] = []
        for chunk in chunks:
            if errors and errors[-1] is not None and self._outcome(task, errors[-1]) is Outcome.RETRIED:
                errors.append(NOT_SENT)
            else:
                errors.append(_call(self.pusher.trigger_batch, chunk)[1])
        return errors

    # -- settling -----------------------------------------------------------------------

    def _outcome(self, task: IncomingTask, error: BaseException | None) -> Outcome:
        return classify(error, task.earlier_attempts + 1, self.max_attempts)

    def _settle(
        self,
        task: IncomingTask,
        error: BaseException | None,
        channel: str,
        event: str,
        count: int,
        park_as: TaskRequest,
        start: int | None = None,
    ) -> Result:
        """Classify the attempt, park ``park_as`` if it must be (``start``: its first event's
        index when it is part of the task), log it, note it in the task log."""
        outcome = self._outcome(task, error)
        pusher_status = 200 if error is None else getattr(error, "status", None)
        message = None if error is None else str(error) or type(error).__name__
        http_status = 200 if outcome is not Outcome.RETRIED else retry_status(error)
        if outcome is Outcome.PARKED:
            try:
                self.backend.park(
                    parked_request(
                        park_as,
                        reason=message or "",
                        original_task=task.name,
                        retry_count=task.earlier_attempts,
                    ),
                    park_name := parking_name(task, start),
                )
            except QueueRefused as exc:  # retrying cannot help: the log keeps it
                outcome = Outcome.LOGGED
                message = f"{message}; the parking store refused it: {exc}"
                log_unparkable(task, park_as, park_name, message)
            except QueueError as exc:
                outcome, http_status = Outcome.RETRIED, 500
                message = f"{message}; could not park: {exc}"
        tasklog.record(outcome.value, task.name, channel, event, task.earlier_attempts, pusher_status)
        _log(
            _LEVELS[outcome],
            f"pusher task {outcome.value}",
            task,
            exc_info=error is not None and not isinstance(error, (PusherError, TaskRefused, Interrupted)),
            channel=channel,
            event=event,
            events=count,
            outcome=outcome.value,
            pusher_status=pusher_status,
            error=message,
        )
        return Result(outcome, http_status, pusher_status, message)

    def _requeue(self, task: IncomingTask, rest: list[Any], error: BaseException | None) -> Result:
        """Queue the events to send again as a new task; acknowledge this one."""
        channel, event = _first_names(rest)
        try:
            encoded = [wire.encode_event(e) for e in rest]
            name = self.backend.add(wire.batch_task(encoded, queue_name=task.queue_name))
        except (QueueError, TypeError, ValueError):
            return self._settle(task, error, channel, event, len(rest), task.request)
        tasklog.record(Outcome.QUEUED.value, name, channel, event)
        _log(
            logging.WARNING,
            "pusher task partly delivered; the rest queued again",
            task,
            channel=channel,
            event=event,
            events=len(rest),
            outcome=Outcome.RETRIED.value,
            requeued_as=name,
            pusher_status=getattr(error, "status", None),
            error=str(error),
        )
        return Result(Outcome.DELIVERED, 200, 200)


Piece = tuple[int, list[Any], Any]  # a batch's events sent in one call: first index, events, error


def parking_name(task: IncomingTask, start: int | None = None) -> str:
    """``<queue>__<task>[-<start>]``: the name ``task`` (or its events from ``start``) is
    parked under, a valid task name (a digest stands for what is too long or not valid)."""
    name = f"{task.queue_name}__{task.name}" + ("" if start is None else f"-{start}")
    if TASK_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{_INVALID_NAME_CHARS.sub('-', name)[: MAX_TASK_NAME - 33]}-{digest}"


_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def unnamed_task_name(queue_name: str, request: TaskRequest) -> str:
    """A name for a task that came without one: a digest of its queue and request, the same
    for every attempt of the task, different for every other task."""
    digest = hashlib.sha256()
    for part in (queue_name, request.method, request.url, repr(request.headers)):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(request.body)
    return f"unnamed-{digest.hexdigest()[:40]}"


def log_unparkable(task: IncomingTask, request: TaskRequest, park_name: str, reason: str) -> None:
    """Write ``request`` (unparkable as ``park_name``) whole to the error log, to be replayed
    by a person: the base64 body in numbered lines of :data:`LOGGED_BODY_CHARS`."""
    body = base64.b64encode(request.body).decode("ascii")
    parts = [body[i : i + LOGGED_BODY_CHARS] for i in range(0, len(body), LOGGED_BODY_CHARS)] or [""]
    for number, part in enumerate(parts, 1):
        _log(
            logging.ERROR,
            "pusher task could not be parked: replay it from this log",
            task,
            outcome=Outcome.LOGGED.value,
            parking_name=park_name,
            error=reason[:MAX_LOGGED_FIELD],
            method=request.method,
            url=request.url[:MAX_LOGGED_FIELD],
            headers={name: value[:MAX_LOGGED_FIELD] for name, value in request.headers},
            body_part=number,
            body_parts=len(parts),
            body_base64=part,
        )


def _log(level: int, message: str, task: IncomingTask, *, exc_info: bool = False, **fields: Any) -> None:
    """One structured line about ``task``: its name, queue and retry count, and ``fields``."""
    logs.log(
        level,
        message,
        exc_info=exc_info,
        task=task.name,
        queue=task.queue_name,
        retry_count=task.earlier_attempts,
        **fields,
    )


def _event_data(data: Any) -> Any:
    """``data`` as pusherlib sends it: bytes as their UTF-8 text (or :class:`TaskRefused`)."""
    if not isinstance(data, bytes):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return TaskRefused(f"the event data is not UTF-8: {exc}")


async def to_the_end(call: Awaitable[T]) -> T:
    """The result of ``call`` (a call running on a thread), awaited to its end even if the
    task awaiting it is cancelled meanwhile: what it did must reach the queue."""
    future = asyncio.ensure_future(call)
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled():
                raise
            _uncancel()


def _uncancel() -> None:
    """Take back the current task's cancellation, which the caller has handled."""
    current = asyncio.current_task()
    if current is not None:
        current.uncancel()


def _call(send: Callable[..., Any], *arguments: Any) -> tuple[Any, BaseException | None]:
    """``send(*arguments)``: its result and ``None``, or ``None`` and the error it raised."""
    try:
        return send(*arguments), None
    except Exception as exc:
        return None, exc


def _first_names(events: list[Any]) -> tuple[str, str]:
    """The channel and event name of a batch's first event, for its log line."""
    first = events[0] if isinstance(events[0], dict) else {}
    return str(first.get("channel", "")), str(first.get("name", ""))
