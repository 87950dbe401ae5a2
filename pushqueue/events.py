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
from .outbox import NotInTransaction, Outbox
from .outcome import Outcome
from .tasks import Backend, InvalidTaskError, Task, TaskRequest


class EventQueue:
    """Creates tasks on ``backend``: raw ones, and Pusher events for the worker; with an
    ``outbox``, also transactional ones (see :mod:`pushqueue.outbox`)."""

    def __init__(
        self, backend: Backend, builder: RequestBuilder, *, queue_name: str, outbox: Outbox | None = None
    ):
        self.backend, self.builder, self.queue_name = backend, builder, queue_name
        self.outbox = outbox

    def add(self, request: TaskRequest, *, transactional: bool = False) -> Task:
        """Create one task (on the ``pusher`` queue unless it names another); with
        ``transactional``, once the current NDB transaction commits. A task for the worker
        (``/worker/...``) must be a POST: the worker serves nothing else."""
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
    ) -> str:
        """Check a Pusher event and queue it for the worker; return its task's name.

        With ``transactional``, it is queued only if the current NDB transaction commits
        (:mod:`pushqueue.outbox`; outside one, :class:`~pushqueue.outbox.NotInTransaction`).
        Otherwise, inside a collecting scope (see :mod:`pushqueue.coalesce`) the event waits
        for the scope's flush, or it is queued now. Raises ``PusherValueError`` /
        ``PusherTypeError`` for an event Pusher would refuse, ``QueueError`` when the task
        cannot be created.
        """
        text = self.builder.encode_data(data)
        checked = self.builder.trigger_body(channels, event, text, socket_id)  # raises if Pusher would refuse
        base = {"name": event, "data": text}
        if socket_id:
            base["socket_id"] = socket_id
        scope = None if transactional else coalesce.current()
        pending = coalesce.PendingEvents() if scope is None else scope
        names = []
        for channel in checked["channels"]:
            item = {"channel": channel, **base}
            names.append(pending.add(item, wire.encode_event(item)))
        if transactional:
            self._outbox().add_after_commit([self._request(chunk) for chunk in pending.chunks])
        elif scope is None:
            self.flush(pending)
        return names[0]

    def flush(self, pending: coalesce.PendingEvents) -> None:
        """Create the tasks of ``pending`` (raises ``QueueError`` at the first that fails)."""
        for chunk in pending.chunks:
            first = chunk.events[0]
            self.backend.add(self._request(chunk))
            tasklog.record(Outcome.QUEUED.value, chunk.name, first["channel"], first["name"])

    def _request(self, chunk: coalesce.Chunk) -> TaskRequest:
        """The task carrying ``chunk``'s events."""
        first = chunk.events[0]
        if len(chunk.events) == 1 and wire.fits_event_url(first):
            return wire.event_task(first, name=chunk.name, queue_name=self.queue_name)
        return wire.batch_task(chunk.encoded, name=chunk.name, queue_name=self.queue_name)

    def _outbox(self) -> Outbox:
        if self.outbox is None:
            raise NotInTransaction("transactional=True needs Datastore: this queue has no outbox")
        return self.outbox
