"""The worker's core: send a task's events to Pusher and settle the task.

:class:`Worker` sends with the process's one Pusher client, classifies the attempt (see
:mod:`pushqueue.outcome`), parks what must be parked, writes the structured log line and
the task log entry, and returns a :class:`Result` whose ``http_status`` is what the queue
must hear: 2xx when it should forget the task (delivered, or parked), 5xx to retry.

A batch task is sent with one ``/batch_events`` call per 10 events, in order. A chunk that
can never succeed is parked on its own and the others go on. When a chunk must be retried
after earlier chunks were delivered, the remaining events are queued as a new task and the
current one is acknowledged, so the delivered ones are not sent twice; if that queueing
fails the whole task is retried (Pusher delivery is at least once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pusherlib import Pusher, PusherError
from pusherlib.validation import MAX_BATCH_SIZE

from . import logs, tasklog, wire
from .outcome import Outcome, classify, retry_status
from .tasks import Backend, QueueError, TaskRequest, parked_request

_LEVELS = {Outcome.DELIVERED: logging.INFO, Outcome.RETRIED: logging.WARNING, Outcome.PARKED: logging.ERROR}


@dataclass(frozen=True, slots=True)
class IncomingTask:
    """A task as the worker received it: the queue's headers and the request to park."""

    queue_name: str
    name: str
    retry_count: int
    request: TaskRequest


@dataclass(frozen=True, slots=True)
class Result:
    """How a task attempt ended, and the HTTP status that tells the queue."""

    outcome: Outcome
    http_status: int
    pusher_status: int | None = None
    error: str | None = None


class Worker:
    """Delivers tasks' events through ``pusher``; parks through ``backend``."""

    def __init__(
        self,
        pusher: Pusher,
        backend: Backend,
        *,
        queue_name: str,
        parked_queue_name: str,
        max_attempts: int,
    ):
        self.pusher, self.backend = pusher, backend
        self.queue_name, self.parked_queue_name = queue_name, parked_queue_name
        self.max_attempts = max_attempts

    def deliver(
        self, task: IncomingTask, channel: str, event: str, data: Any, socket_id: str | None
    ) -> Result:
        """Trigger one event: ``data`` is sent as pusherlib sends it, bytes as their UTF-8 text."""
        try:
            if isinstance(data, bytes):
                data = data.decode("utf-8")
            self.pusher.trigger(channel, event, data, socket_id)
        except Exception as exc:
            return self._settle(task, exc, channel, event, 1, task.request)
        return self._settle(task, None, channel, event, 1, task.request)

    def deliver_batch(self, task: IncomingTask) -> Result:
        """Trigger the events of a batch task, 10 per call."""
        try:
            events = wire.parse_batch(task.request.body)
        except ValueError as exc:
            return self.refuse(task, exc)
        whole = len(events) <= MAX_BATCH_SIZE
        result = Result(Outcome.DELIVERED, 200, 200)
        for start in range(0, len(events), MAX_BATCH_SIZE):
            chunk = events[start : start + MAX_BATCH_SIZE]
            try:
                self.pusher.trigger_batch(chunk)
                error = None
            except Exception as exc:
                error = exc
            channel, event = _first_names(chunk)
            if start and self._outcome(task, error) is Outcome.RETRIED:
                return self._requeue(task, events[start:], error, channel, event)
            park_as = task.request  # the whole task, or the failed chunk alone when there are others
            if error is not None and not whole:
                park_as = wire.batch_task([wire.encode_event(e) for e in chunk])
            settled = self._settle(task, error, channel, event, len(chunk), park_as)
            if settled.outcome is not Outcome.DELIVERED:
                result = settled
            if settled.outcome is Outcome.RETRIED:
                break
        return result

    def refuse(self, task: IncomingTask, error: Exception) -> Result:
        """Settle a task that cannot be read (``error`` says why): it is parked."""
        return self._settle(task, error, "", "", 0, task.request)

    # -- settling -----------------------------------------------------------------------

    def _outcome(self, task: IncomingTask, error: BaseException | None) -> Outcome:
        from_parked = task.queue_name == self.parked_queue_name
        return classify(error, task.retry_count + 1, self.max_attempts, from_parked_queue=from_parked)

    def _settle(
        self,
        task: IncomingTask,
        error: BaseException | None,
        channel: str,
        event: str,
        count: int,
        park_as: TaskRequest,
    ) -> Result:
        outcome = self._outcome(task, error)
        pusher_status = 200 if error is None else getattr(error, "status", None)
        message = None if error is None else str(error) or type(error).__name__
        http_status = 200 if outcome is not Outcome.RETRIED else retry_status(error)
        if outcome is Outcome.PARKED:
            try:
                self.backend.park(
                    parked_request(
                        park_as, reason=message or "", original_task=task.name, retry_count=task.retry_count
                    ),
                    task.name,
                )
            except QueueError as exc:
                outcome, http_status = Outcome.RETRIED, 503
                message = f"{message}; could not park: {exc}"
        tasklog.record(outcome.value, task.name, channel, event, task.retry_count, pusher_status)
        _log(
            _LEVELS[outcome],
            f"pusher task {outcome.value}",
            task,
            exc_info=error is not None and not isinstance(error, (PusherError, ValueError, TypeError)),
            channel=channel,
            event=event,
            events=count,
            outcome=outcome.value,
            pusher_status=pusher_status,
            error=message,
        )
        return Result(outcome, http_status, pusher_status, message)

    def _requeue(
        self, task: IncomingTask, rest: list[Any], error: BaseException | None, channel: str, event: str
    ) -> Result:
        """Queue the events not yet sent as a new task; acknowledge this one."""
        try:
            encoded = [wire.encode_event(e) for e in rest]
            name = self.backend.add(wire.batch_task(encoded, queue_name=self.queue_name))
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


def _log(level: int, message: str, task: IncomingTask, *, exc_info: bool = False, **fields: Any) -> None:
    """One structured line about ``task``: its name, queue and retry count, and ``fields``."""
    logs.log(
        level,
        message,
        exc_info=exc_info,
        task=task.name,
        queue=task.queue_name,
        retry_count=task.retry_count,
        **fields,
    )


def _first_names(events: list[Any]) -> tuple[str, str]:
    """The channel and event name of a batch's first event, for its log line."""
    first = events[0] if isinstance(events[0], dict) else {}
    return str(first.get("channel", "")), str(first.get("name", ""))
