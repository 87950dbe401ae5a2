"""Receiving Pusher webhooks: check them with pusherlib, refuse replays, dispatch events.

Each handler runs at least once per webhook, whichever route it reaches; a part is recorded
only once its handlers succeeded, so Pusher's redelivery retries what failed. Share one
:class:`ReplayStore` between processes (:class:`ReplayGuard` is one process's memory).
Rules: docs/pusherlib.md, 'Webhook replays'."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

from ..client import Pusher
from ..webhooks import MAX_AGE_SECONDS, WebhookRejected
from .hooks import PusherHooks
from .replies import Reply, refusal

LOGGER = logging.getLogger(__name__)


class ReplayStoreUnavailable(RuntimeError):
    """The replay records cannot be read or written now."""


class ReplayStore(Protocol):
    """Where received webhooks are remembered until their window closes."""

    max_age: float

    def seen(self, webhook_id: str) -> bool:
        """Whether ``webhook_id`` was handled and its window is still open."""
        ...

    def record(self, webhook_id: str, expires_at: float) -> None:
        """Remember ``webhook_id`` as handled until ``expires_at`` (seconds since the epoch)."""
        ...


class ReplayGuard:
    """This process's handled webhooks, each until its 5-minute window closes; when ``capacity`` is
    reached new webhooks get 503 (an entry in its window is never evicted)."""

    def __init__(self, max_age: float = MAX_AGE_SECONDS, capacity: int = 100_000):
        self.max_age, self.capacity = max_age, capacity
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, webhook_id: str) -> bool:
        with self._lock:
            self._forget_expired()
            if webhook_id in self._expiry:
                return True
            if len(self._expiry) >= self.capacity:
                raise ReplayStoreUnavailable(f"{self.capacity} webhooks are remembered already")
            return False

    def record(self, webhook_id: str, expires_at: float) -> None:
        with self._lock:
            self._expiry[webhook_id] = expires_at
            self._expiry.move_to_end(webhook_id)

    def _forget_expired(self) -> None:
        now = time.time()
        for webhook_id in [k for k, expiry in self._expiry.items() if expiry < now]:
            del self._expiry[webhook_id]


EVENT_HANDLERS = "events"  # the record of the on(event) handlers; the others are group names


def webhook_id(body: bytes, handlers: str = EVENT_HANDLERS) -> str:
    """The record of a webhook (the SHA-256 of its signed body) handled by ``handlers``
    (:data:`EVENT_HANDLERS`, or a group's name)."""
    return f"{hashlib.sha256(body).hexdigest()}.{handlers}"


def receive_webhook(
    client: Pusher,
    hooks: PusherHooks,
    guard: ReplayStore,
    request: Any,
    *,
    key: str | None,
    signature: str | None,
    body: bytes,
    group: str | None = None,
) -> Reply:
    """Check a webhook (401 forged, stale or replayed; 400 malformed; 503 when replays cannot be
    checked), call the handlers of ``group`` and of each event, and record it."""
    try:
        webhook = client.check_webhook(key, signature, body, max_age=guard.max_age)
    except WebhookRejected as exc:
        return refusal(400 if exc.reason == "body" else 401, str(exc))
    events = webhook.get("events")
    if not isinstance(events, list) or not all(
        isinstance(event, dict) and isinstance(event.get("name"), str) for event in events
    ):
        return refusal(400, "the webhook body needs events: a list of objects with a name")
    parts = [group, EVENT_HANDLERS] if group else [EVENT_HANDLERS]
    try:
        fresh = [part for part in parts if not guard.seen(webhook_id(body, part))]
    except ReplayStoreUnavailable as exc:
        return refusal(503, f"webhooks cannot be checked for replays now, try again: {exc}")
    if not fresh:
        return refusal(401, "this webhook was already received: replays are refused")
    expires_at = webhook["time_ms"] / 1000.0 + guard.max_age
    for part in fresh:
        if part == EVENT_HANDLERS:
            for event in events:
                for handler in hooks.event_handlers.get(event["name"], ()):
                    handler(event, request)
        else:
            for handler in hooks.webhooks.handlers[part]:
                handler(webhook, request)
        _record(guard, webhook_id(body, part), expires_at)
    return Reply(200, {"ok": True, "events": len(events)})


def _record(guard: ReplayStore, record: str, expires_at: float) -> None:
    try:
        guard.record(record, expires_at)
    except ReplayStoreUnavailable as exc:  # handled: answering an error would make Pusher send it again
        LOGGER.error("webhook handled but not recorded; a replay in its window would be accepted: %s", exc)
