"""Transactional enqueue: an event's tasks written in the Datastore transaction
(``transactional=True``), queued after the commit or by the sweeper; see
docs/operations.md, 'The transactional outbox'. Outside a transaction: :class:`NotInTransaction`."""

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
        """Queue the committed entry's tasks and delete it; on failure leave it to the sweeper
        (raising would tell the caller its committed transaction failed)."""
        try:
            # The callback runs in the committed transaction's context: leave the transaction.
            with tx_context.new(transaction=None).use():
                self._send(key, requests, set())
        except QueueError as exc:
            logs.log(logging.WARNING, "outbox entry left for the sweeper", entry=key.id(), error=str(exc))

    def _send(self, key: Any, requests: list[TaskRequest], down: set[str | None]) -> str:
        """Queue ``requests``, park those refused, delete the entry: ``"queued"``, ``"parked"`` or ``"left"``
        when a queue is down (added to ``down``); :class:`QueueError` if Datastore or parking fails."""
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
        """Queue the tasks of at most ``limit`` entries older than ``older_than`` s, oldest first; a
        Datastore or parking failure stops the sweep."""
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
