"""The webhook replay records in Datastore, shared by every instance: one ``PusherWebhook``
entity per webhook, expiring with its 5-minute window. Have Datastore delete them::

    gcloud firestore fields ttls update expires --collection-group=PusherWebhook --enable-ttl
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pusherlib.endpoints import ReplayStoreUnavailable
from pusherlib.webhooks import MAX_AGE_SECONDS
from pushqueue.datastore import CALL_OPTIONS, NdbClients, translated_errors
from pushqueue.tasks import QueueError


def record_model() -> Any:
    """The ``PusherWebhook`` model (google-cloud-ndb imported on first use)."""
    global _RECORD
    if _RECORD is None:
        from google.cloud import ndb

        class PusherWebhook(ndb.Model):
            """A handled webhook, until its window closes."""

            expires = ndb.DateTimeProperty(tzinfo=UTC)

        _RECORD = PusherWebhook
    return _RECORD


_RECORD: Any = None


class DatastoreReplayStore:
    """Handled webhooks as ``PusherWebhook`` entities (see the module docstring)."""

    def __init__(self, clients: NdbClients, max_age: float = MAX_AGE_SECONDS):
        self.clients, self.max_age = clients, max_age

    def seen(self, webhook_id: str) -> bool:
        from google.cloud import ndb

        try:
            with self.clients.context(), translated_errors():
                record = ndb.Key(record_model(), webhook_id).get(**CALL_OPTIONS)
        except QueueError as exc:
            raise ReplayStoreUnavailable(str(exc)) from exc
        return record is not None and record.expires.timestamp() > time.time()

    def record(self, webhook_id: str, expires_at: float) -> None:
        try:
            with self.clients.context(), translated_errors():
                expires = datetime.fromtimestamp(expires_at, UTC)
                record_model()(id=webhook_id, expires=expires).put(**CALL_OPTIONS)
        except QueueError as exc:
            raise ReplayStoreUnavailable(str(exc)) from exc
