"""Enqueueing: raw tasks (``taskqueue.add``'s arguments) and checked Pusher events.

:meth:`EventQueue.enqueue_event` refuses a bad event at once: it builds the body of the
Pusher request the worker will send (pusherlib's ``RequestBuilder.trigger_body``: channel
and event names, socket id, data size after encoding and, for ``private-encrypted-``
channels, after encryption; nothing is signed) and raises pusherlib's ``PusherValueError``
/ ``PusherTypeError`` if Pusher would refuse it. The data is encoded to text here, as
pusherlib would (a str as it is, anything else as JSON), and travels as that text (see
:mod:`pushqueue.wire`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pusherlib.api import RequestBuilder

from . import coalesce, tasklog, wire
from .outcome import Outcome
from .tasks import Backend, InvalidTaskError, Task, TaskRequest


class EventQueue:
    """Creates tasks on ``backend``: raw ones, and Pusher events for the worker."""

    def __init__(self, backend: Backend, builder: RequestBuilder, *, queue_name: str):
        self.backend, self.builder, self.queue_name = backend, builder, queue_name

    def add(self, request: TaskRequest) -> Task:
        """Create one task (on the ``pusher`` queue unless it names another). A task for the
        worker (``/worker/...``) must be a POST: the worker serves nothing else."""
        if request.url.startswith(wire.WORKER_PATH_PREFIX) and request.method != "POST":
            raise InvalidTaskError(
                f"the worker serves POST tasks only; a {request.method} task for {request.url} "
                "could never be delivered (leave method out, or use POST)"
            )
        name = self.backend.add(request)
        return Task(name, request.queue_name or self.queue_name, request.url, request.method, request.eta)

    def enqueue_event(
        self, channels: str | Iterable[str], event: str, data: Any, socket_id: str | None = None
    ) -> str:
        """Check a Pusher event and queue it for the worker; return its task's name.

        Inside a collecting scope (see :mod:`pushqueue.coalesce`) the event waits for the
        scope's flush; otherwise it is queued now. Raises ``PusherValueError`` /
        ``PusherTypeError`` for an event Pusher would refuse, ``QueueError`` when the task
        cannot be created.
        """
        text = self.builder.encode_data(data)
        checked = self.builder.trigger_body(channels, event, text, socket_id)  # raises if Pusher would refuse
        base = {"name": event, "data": text}
        if socket_id:
            base["socket_id"] = socket_id
        scope = coalesce.current()
        pending = coalesce.PendingEvents() if scope is None else scope
        names = []
        for channel in checked["channels"]:
            item = {"channel": channel, **base}
            names.append(pending.add(item, wire.encode_event(item)))
        if scope is None:
            self.flush(pending)
        return names[0]

    def flush(self, pending: coalesce.PendingEvents) -> None:
        """Create the tasks of ``pending`` (raises ``QueueError`` at the first that fails)."""
        for chunk in pending.chunks:
            first = chunk.events[0]
            if len(chunk.events) == 1 and wire.fits_event_url(first):
                request = wire.event_task(first, name=chunk.name, queue_name=self.queue_name)
            else:
                request = wire.batch_task(chunk.encoded, name=chunk.name, queue_name=self.queue_name)
            self.backend.add(request)
            tasklog.record(Outcome.QUEUED.value, chunk.name, first["channel"], first["name"])
