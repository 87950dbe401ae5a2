"""Enqueueing: raw tasks (``taskqueue.add``'s arguments) and checked Pusher events. An event is
checked as pusherlib would build its request (names, size after encoding and encryption) and
refused at once with ``PusherValueError``/``PusherTypeError``; its data travels as text."""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pusherlib import validation
from pusherlib.api import RequestBuilder

from . import coalesce, logs, tasklog, wire
from .coalesce import Placement
from .outbox import NotInTransaction, Outbox
from .outcome import Outcome
from .tasks import (
    Backend,
    InvalidTaskError,
    Task,
    TaskAlreadyExistsError,
    TaskRequest,
    check_queue_name,
    eta_seconds,
)


class EventQueue:
    """Creates tasks on ``backend``: raw ones and Pusher events (transactional with an ``outbox``);
    with ``shards`` > 1 an event goes to ``<queue_name>-<n>``, ``n`` a stable hash of its channel."""

    def __init__(
        self,
        backend: Backend,
        builder: RequestBuilder,
        *,
        queue_name: str,
        outbox: Outbox | None = None,
        shards: int = 1,
    ):
        self.backend, self.builder, self.queue_name = backend, builder, queue_name
        self.outbox = outbox
        self.shards = shards

    def queue_for(self, channel: str) -> str:
        """The queue of ``channel``'s events: one channel always has the same one."""
        if self.shards == 1:
            return self.queue_name
        return f"{self.queue_name}-{zlib.crc32(channel.encode('utf-8')) % self.shards}"

    def add(self, request: TaskRequest, *, transactional: bool = False) -> Task:
        """Create one task (``transactional``: once the NDB transaction commits); a task for the worker
        (``/worker/...``) must be a POST."""
        if request.url.startswith(wire.WORKER_PATH_PREFIX) and request.method != "POST":
            raise InvalidTaskError(
                f"the worker serves POST tasks only; a {request.method} task for {request.url} "
                "could never be delivered (leave method out, or use POST)"
            )
        if transactional:
            [name] = self._outbox().add_after_commit([request])
        else:
            name = self.backend.add(request)
        return Task(name, request.queue_name or self.queue_name, request.url, request.method, request.eta)

    def enqueue_event(
        self,
        channels: str | Iterable[str],
        event: str,
        data: Any,
        socket_id: str | None = None,
        *,
        transactional: bool = False,
        countdown: float | None = None,
        eta: datetime | float | None = None,
        queue_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Check an event and queue it for the worker (10 channels per task); return its first task's name.

        ``idempotency_key`` gives fixed task names (the queue refuses a repeat); ``transactional``:
        only if the NDB transaction commits; in a collecting scope it waits for the flush. Raises
        ``PusherValueError``/``PusherTypeError``, ``InvalidTaskError`` or ``QueueError``."""
        queue_name = check_queue_name(queue_name)
        when = eta_seconds(countdown, eta)
        stem = None if idempotency_key is None else idempotent_name(idempotency_key)
        text = self.builder.encode_data(data)
        names = [
            name
            for group in _channel_groups(channels)
            for name in self.builder.trigger_body(group, event, text, socket_id)["channels"]
        ]  # raises if Pusher would refuse
        base = {"name": event, "data": text}
        if socket_id:
            base["socket_id"] = socket_id
        scope = None if transactional or stem else coalesce.current()
        pending = coalesce.PendingEvents() if scope is None else scope
        tasks = []
        for channel in names:
            item = {"channel": channel, **base}
            placement = Placement(queue_name or self.queue_for(channel), when, stem)
            tasks.append(pending.add(item, wire.encode_event(item), placement))
        if transactional:
            self._outbox().add_after_commit([self._request(chunk) for chunk in pending.chunks])
        elif scope is None:
            self.flush(pending)
        return tasks[0]

    def flush(self, pending: coalesce.PendingEvents) -> None:
        """Create the tasks of ``pending`` (raises ``QueueError`` at the first that fails).
        A task named by an idempotency key that the queue already has is not an error."""
        for chunk in pending.chunks:
            first = chunk.events[0]
            try:
                self.backend.add(self._request(chunk))
            except TaskAlreadyExistsError:
                if chunk.placement.name is None:
                    raise
                logs.log(logging.INFO, "idempotent event already queued", task=chunk.name)
                continue
            tasklog.record(Outcome.QUEUED.value, chunk.name, first["channel"], first["name"])

    def _request(self, chunk: coalesce.Chunk) -> TaskRequest:
        """The task carrying ``chunk``'s events."""
        first, placement = chunk.events[0], chunk.placement
        if len(chunk.events) == 1 and wire.fits_event_url(first):
            request = wire.event_task(first, name=chunk.name, queue_name=placement.queue_name)
        else:
            request = wire.batch_task(chunk.encoded, name=chunk.name, queue_name=placement.queue_name)
        return request if placement.eta is None else replace(request, eta=placement.eta)

    def _outbox(self) -> Outbox:
        if self.outbox is None:
            raise NotInTransaction("transactional=True needs Datastore: this queue has no outbox")
        return self.outbox


def idempotent_name(key: str) -> str:
    """The task-name stem of an idempotency key: a digest, so any key makes a valid name
    (and hashed names spread over Cloud Tasks' index, as its documentation asks)."""
    if not isinstance(key, str) or not key:
        raise InvalidTaskError("an idempotency key must be a non-empty str")
    return "idem-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def _channel_groups(channels: str | Iterable[str]) -> list[Any]:
    """``channels`` in groups pusherlib checks one trigger's worth at a time (a single name,
    or anything that is not a list of names, is one group: pusherlib says what is wrong)."""
    if isinstance(channels, (str, bytes, Mapping)) or not isinstance(channels, Iterable):
        return [channels]
    names = list(channels)
    size = validation.MAX_CHANNELS_PER_TRIGGER
    return [names[start : start + size] for start in range(0, len(names), size)] or [names]
