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

``taskqueue.add(..., transactional=True)`` (see :mod:`pushqueue.taskqueue`) goes the same
way. ``transactional=True`` outside a transaction raises :class:`NotInTransaction`. The
transaction's own retries rewrite the entry: only the committed attempt's tasks are sent.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import logs
from .datastore import NdbClients, translated_errors
from .tasks import QueueError, TaskAlreadyExistsError, TaskRequest

SWEEP_AFTER_SECONDS = 30.0  # an entry younger than this may still be sent by its own commit
SWEEP_BATCH = 100

AddTask = Callable[[TaskRequest], str]


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


class Outbox:
    """Tasks written in a transaction, added to the queue with ``add`` after it commits."""

    def __init__(self, clients: NdbClients, add: AddTask):
        self.clients, self.add = clients, add

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
        with translated_errors():
            key = entry_model()(tasks=[_encode(r) for r in named], written_at=time.time()).put()
        context.call_on_commit(lambda: self._after_commit(context, key, named))
        return [r.name or "" for r in named]

    def _after_commit(self, tx_context: Any, key: Any, requests: list[TaskRequest]) -> None:
        """Queue the committed entry's tasks and delete it; on failure leave it to the sweeper
        (raising here would tell the caller its committed transaction failed)."""
        try:
            # The callback runs in the committed transaction's context: leave the transaction.
            with tx_context.new(transaction=None).use():
                self._send(key, requests)
        except QueueError as exc:
            logs.log(logging.WARNING, "outbox entry left for the sweeper", entry=key.id(), error=str(exc))

    def _send(self, key: Any, requests: list[TaskRequest]) -> None:
        for request in requests:
            with contextlib.suppress(TaskAlreadyExistsError):  # added before: by the commit or a sweep
                self.add(request)
        with translated_errors():
            key.delete()

    def sweep(self, older_than: float = SWEEP_AFTER_SECONDS, limit: int = SWEEP_BATCH) -> int:
        """Queue the tasks of entries written more than ``older_than`` s ago and left behind
        (at most ``limit`` entries); the number of entries queued."""
        model = entry_model()
        swept = 0
        with self.clients.context():
            with translated_errors():
                entries = model.query(model.written_at < time.time() - older_than).fetch(limit)
            for entry in entries:
                self._send(entry.key, [_decode(record) for record in entry.tasks])
                swept += 1
        if swept:
            logs.log(logging.WARNING, "outbox entries left behind were queued", entries=swept)
        return swept
