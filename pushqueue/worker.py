"""The worker's core: send a task's events to Pusher and settle the task.

:class:`Worker` sends with the process's one Pusher client, classifies the attempt (see
:mod:`pushqueue.outcome`), parks what must be parked, writes the structured log line and
the task log entry, and returns a :class:`Result` whose ``http_status`` is what the queue
must hear: 2xx when it should forget the task (delivered, or parked), 5xx to retry.

The attempt number is the task's earlier attempts that reached the app (the queue's
``TaskExecutionCount``) plus one: attempts that never reached an instance (a bad deploy)
do not use up the budget, and the queue itself has no limit that could drop a task first.

A batch task is sent with one ``/batch_events`` call per 10 events: in order, or, with
``async_context`` (an NDB context: ``PUSHER_TRANSPORT=ndb``), all chunks in flight at once
through ``trigger_batch_async`` futures. A chunk that can never succeed is parked on its own
under ``<task>-<first event's index>``, so chunks never collide and parking the same chunk
again (an acknowledgement lost) keeps one copy. When some chunks must be retried while
others were delivered or parked, their events (and those not sent yet) are queued as a new
task and the current one is acknowledged, so the delivered ones are not sent twice; if that
queueing fails the whole task is retried (Pusher delivery is at least once).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from pusherlib import Pusher, PusherError
from pusherlib.validation import MAX_BATCH_SIZE

from . import logs, tasklog, wire
from .outcome import Outcome, TaskRefused, classify, retry_status
from .tasks import Backend, QueueError, TaskRequest, parked_request

MAX_TASK_NAME = 500  # Cloud Tasks' and the bundled queue's limit
NOT_SENT = RuntimeError("not sent: an earlier chunk of the task must be retried")
_LEVELS = {Outcome.DELIVERED: logging.INFO, Outcome.RETRIED: logging.WARNING, Outcome.PARKED: logging.ERROR}


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
    """Delivers tasks' events through ``pusher``; parks through ``backend``.

    ``async_context`` (optional) makes every task run inside the context it returns (an NDB
    context) and send through the client's ``*_async`` futures. ``loop_pusher`` (optional)
    is a client with an asyncio transport, for :meth:`deliver_on_loop`."""

    def __init__(
        self,
        pusher: Pusher,
        backend: Backend,
        *,
        queue_name: str,
        max_attempts: int,
        async_context: Callable[[], AbstractContextManager[Any]] | None = None,
        loop_pusher: Pusher | None = None,
    ):
        self.pusher, self.backend = pusher, backend
        self.queue_name = queue_name
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
        return self._settle(task, error, channel, event, 1, task.request, task.name)

    async def deliver_on_loop(
        self,
        task: IncomingTask,
        channel: str,
        event: str,
        data: Any,
        socket_id: str | None,
        blocking: Callable[[Callable[[], Result]], Awaitable[Result]],
    ) -> Result:
        """:meth:`deliver` on an asyncio event loop, through ``loop_pusher``: the trigger is
        awaited and the task settled on the loop; only parking (which waits on the queue or
        Datastore) runs through ``blocking``, which runs a call on a thread."""
        assert self.loop_pusher is not None, "deliver_on_loop needs a loop_pusher"
        data = _event_data(data)
        if isinstance(data, TaskRefused):
            return await blocking(functools.partial(self.refuse, task, data))
        error = None
        try:
            await self.loop_pusher.trigger_async(channel, event, data, socket_id)
        except Exception as exc:
            error = exc
        settle = functools.partial(self._settle, task, error, channel, event, 1, task.request, task.name)
        return await blocking(settle) if self._outcome(task, error) is Outcome.PARKED else settle()

    def deliver_batch(self, task: IncomingTask) -> Result:
        """Trigger the events of a batch task, 10 per call."""
        try:
            events = wire.parse_batch(task.request.body)
        except ValueError as exc:
            return self.refuse(task, TaskRefused(str(exc)))
        if len(events) <= MAX_BATCH_SIZE:
            channel, event = _first_names(events)
            error = self._send_chunks(task, [events])[0]
            return self._settle(task, error, channel, event, len(events), task.request, task.name)
        chunks = [events[start : start + MAX_BATCH_SIZE] for start in range(0, len(events), MAX_BATCH_SIZE)]
        errors = self._send_chunks(task, chunks)
        result, again, first_error = Result(Outcome.DELIVERED, 200, 200), [], None
        for index, (chunk, error) in enumerate(zip(chunks, errors, strict=True)):
            if error is NOT_SENT or self._outcome(task, error) is Outcome.RETRIED:
                again.extend(chunk)
                first_error = first_error or error
                continue
            channel, event = _first_names(chunk)
            park_as = wire.batch_task([wire.encode_event(e) for e in chunk])
            park_name = chunk_task_name(task.name, index * MAX_BATCH_SIZE)
            settled = self._settle(task, error, channel, event, len(chunk), park_as, park_name)
            if settled.outcome is Outcome.RETRIED:  # it could not be parked: retry the whole task
                return settled
            if settled.outcome is Outcome.PARKED:
                result = settled
        if len(again) == len(events):
            channel, event = _first_names(events)
            return self._settle(task, first_error, channel, event, len(events), task.request, task.name)
        if again:
            requeued = self._requeue(task, again, first_error)
            return result if requeued.outcome is Outcome.DELIVERED else requeued
        return result

    def refuse(self, task: IncomingTask, error: TaskRefused) -> Result:
        """Settle a task that can never be served (``error`` says why): it is parked."""
        return self._settle(task, error, "", "", 0, task.request, task.name)

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
        park_name: str,
    ) -> Result:
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
                    park_name,
                )
            except QueueError as exc:
                outcome, http_status = Outcome.RETRIED, 500
                message = f"{message}; could not park: {exc}"
        tasklog.record(outcome.value, task.name, channel, event, task.earlier_attempts, pusher_status)
        _log(
            _LEVELS[outcome],
            f"pusher task {outcome.value}",
            task,
            exc_info=error is not None and not isinstance(error, (PusherError, TaskRefused)),
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
            name = self.backend.add(wire.batch_task(encoded, queue_name=self.queue_name))
        except (QueueError, TypeError, ValueError):
            return self._settle(task, error, channel, event, len(rest), task.request, task.name)
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


def chunk_task_name(task_name: str, start: int) -> str:
    """The parked name of the chunk of ``task_name`` starting at event ``start``: unique,
    the same every time, and within the 500 characters a task name may have."""
    suffix = f"-{start}"
    if len(task_name) + len(suffix) > MAX_TASK_NAME:
        digest = hashlib.sha256(task_name.encode()).hexdigest()[:16]
        task_name = f"{task_name[: MAX_TASK_NAME - len(suffix) - 17]}-{digest}"
    return task_name + suffix


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
