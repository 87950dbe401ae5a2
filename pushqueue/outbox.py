"""Transactional enqueue: events sent only if the Datastore transaction commits.

Inside an ``@ndb.transactional()`` function::

    @ndb.transactional()
    def place_order(order):
        order.put()
        pushqueue.enqueue_event(f"private-orders.{order.id}", "placed", {"id": order.id},
                                transactional=True)

The event is checked at once (a bad event raises there, as without ``transactional``); its
tasks are written as one ``PushOutbox`` entity *in the transaction*, so they exist if and
only if the transaction commits. After the commit (ndb's ``call_on_commit``) the tasks are
added to the queue and the entity deleted. If the instance stops between the commit and
that, or the queue cannot be reached then, the entity stays: the sweeper (``cron.yaml``:
``GET /cron/outbox-sweep`` every minute, :mod:`handlers.outbox`) adds the tasks of entries
older than :data:`SWEEP_AFTER_SECONDS` and deletes them. Each task's name is fixed when the
entry is written, so a task added twice (after commit, then by the sweeper) is refused by
the queue as a duplicate: sent once while the queue remembers the name, at least once after.

A task the queue refuses for good (:class:`~pushqueue.tasks.QueueRefused`: a queue dropped
from ``queue.yaml``, a task too large) is parked under its name, with the reason, where
``/admin/parked`` lists it (a replay sends it to the ``pusher`` queue), once the entry's
other tasks are queued; then the entry is deleted. A queue that cannot be reached now leaves
the entry for the next sweep, and the sweep tries no other task for that queue but goes on
with the other entries: no entry holds back the ones behind it. Datastore or the parking
store failing stops the sweep: the entries not tried yet wait for the next one.

``taskqueue.add(..., transactional=True)`` (see :mod:`pushqueue.taskqueue`) goes the same
way. ``transactional=True`` outside a transaction raises :class:`NotInTransaction`. The
transaction's own retries rewrite the entry: only the committed attempt's tasks are sent.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import logs
from .datastore import CALL_OPTIONS, NdbClients, translated_errors
from .tasks import QueueError, QueueRefused, TaskAlreadyExistsError, TaskRequest, parked_request

SWEEP_AFTER_SECONDS = 30.0  # an entry younger than this may still be sent by its own commit
SWEEP_BATCH = 100

AddTask = Callable[[TaskRequest], str]
ParkTask = Callable[[TaskRequest, str], None]


class NotInTransaction(RuntimeError):
    """``transactional=True`` was asked outside an NDB transaction."""


def entry_model() -> Any:
    """The ``PushOutbox`` model (google-cloud-ndb imported on first use)."""
    global _OUTBOX_ENTRY
    if _OUTBOX_ENTRY is None:
        from google.cloud import ndb

        class PushOutbox(ndb.Model):
            """Tasks to add once the transaction that wrote them has committed."""

            tasks = ndb.JsonProperty(compressed=True)
            written_at = ndb.FloatProperty()

        _OUTBOX_ENTRY = PushOutbox
    return _OUTBOX_ENTRY


_OUTBOX_ENTRY: Any = None


def _encode(request: TaskRequest) -> dict[str, Any]:
    return {
        "url": request.url,
        "method": request.method,
        "headers": [list(pair) for pair in request.headers],
        "body": base64.b64encode(request.body).decode("ascii"),
        "queue_name": request.queue_name,
        "name": request.name,
        "eta": request.eta,
    }


def _decode(record: dict[str, Any]) -> TaskRequest:
    return TaskRequest(
        url=record["url"],
        body=base64.b64decode(record["body"]),
        headers=tuple((k, v) for k, v in record["headers"]),
        method=record["method"],
        queue_name=record["queue_name"],
        name=record["name"],
        eta=record["eta"],
    )


@dataclass(frozen=True, slots=True)
class Swept:
    """What a sweep did with the entries it found: all their tasks ``queued``; some
    ``parked`` (refused by the queue for good) and the rest queued; ``left`` for the next."""

    queued: int = 0
    parked: int = 0
    left: int = 0


class Outbox:
    """Tasks written in a transaction, added to the queue with ``add`` after it commits;
    those the queue refuses for good are kept with ``park`` (the backend's)."""

    def __init__(self, clients: NdbClients, add: AddTask, park: ParkTask):
        self.clients, self.add, self.park = clients, add, park

    def add_after_commit(self, requests: list[TaskRequest]) -> list[str]:
        """Write ``requests`` in the current transaction; queue them once it commits.
        Unnamed requests get a name now. Returns the task names."""
        from google.cloud.ndb import context as context_module

        context = context_module.get_context(False)
        if context is None or not context.in_transaction():
            raise NotInTransaction(
                "transactional=True needs an NDB transaction: call it inside an @ndb.transactional() "
                "function, or leave transactional out to queue the event now"
            )
        named = [r if r.name else replace(r, name=uuid.uuid4().hex) for r in requests]
        with translated_errors():  # written by the caller's commit (ndb takes no deadline here)
            key = entry_model()(tasks=[_encode(r) for r in named], written_at=time.time()).put()
        context.call_on_commit(lambda: self._after_commit(context, key, named))
        return [r.name or "" for r in named]

    def _after_commit(self, tx_context: Any, key: Any, requests: list[TaskRequest]) -> None:
        """Queue the committed entry's tasks and delete it; when the queue or Datastore cannot
        be reached, leave it to the sweeper (raising here would tell the caller its committed
        transaction failed)."""
        try:
            # The callback runs in the committed transaction's context: leave the transaction.
            with tx_context.new(transaction=None).use():
                self._send(key, requests, set())
        except QueueError as exc:
            logs.log(logging.WARNING, "outbox entry left for the sweeper", entry=key.id(), error=str(exc))

    def _send(self, key: Any, requests: list[TaskRequest], down: set[str | None]) -> str:
        """Queue ``requests``, park those refused for good, delete the entry: ``"queued"`` or
        ``"parked"``; ``"left"`` (the entry stays) when a queue cannot be reached, which is
        added to ``down`` (a queue already there is not tried). Raises :class:`QueueError`
        (the entry stays) when Datastore or the parking store fails."""
        refused: list[tuple[TaskRequest, QueueRefused]] = []
        for request in requests:
            if request.queue_name in down:
                return "left"
            try:
                self.add(request)
            except TaskAlreadyExistsError:  # added before: by the commit or a sweep
                pass
            except QueueRefused as exc:
                refused.append((request, exc))
            except QueueError as exc:
                down.add(request.queue_name)
                queue = request.queue_name or "default"
                logs.log(
                    logging.WARNING,
                    "outbox entry left: its queue cannot be reached",
                    queue=queue,
                    error=str(exc),
                )
                return "left"
        for request, exc in refused:
            queue = request.queue_name or "default"
            name = request.name or ""
            reason = f"the queue refused the task (queue {queue}): {exc}"
            self.park(parked_request(request, reason=reason, original_task=name, retry_count=0), name)
            logs.log(logging.ERROR, "outbox task refused by the queue: parked", task=name, error=reason)
        with translated_errors():
            key.delete(**CALL_OPTIONS)
        return "parked" if refused else "queued"

    def sweep(self, older_than: float = SWEEP_AFTER_SECONDS, limit: int = SWEEP_BATCH) -> Swept:
        """Queue the tasks of entries written more than ``older_than`` s ago and left behind
        (at most ``limit`` entries, oldest first): what became of them. A Datastore or parking
        failure stops the sweep (the entries not tried are left): each would wait for it too."""
        model = entry_model()
        counts = {"queued": 0, "parked": 0, "left": 0}
        down: set[str | None] = set()
        with self.clients.context():
            with translated_errors():
                query = model.query(model.written_at < time.time() - older_than)
                entries = query.fetch(limit, **CALL_OPTIONS)
            for index, entry in enumerate(entries):
                try:
                    counts[self._send(entry.key, [_decode(record) for record in entry.tasks], down)] += 1
                except QueueError as exc:
                    counts["left"] += len(entries) - index
                    logs.log(logging.WARNING, "outbox sweep stopped: the store failed", error=str(exc))
                    break
        if entries:
            logs.log(logging.WARNING, "outbox entries left behind were swept", **counts)
        return Swept(**counts)
