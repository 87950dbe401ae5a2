"""Receiving Pusher webhooks: check them with pusherlib, refuse replays, dispatch events.

Framework-free: the caller passes the ``X-Pusher-Key`` and ``X-Pusher-Signature`` headers
and the raw body, and gets a :class:`~.channel_auth.Reply`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, cast

from pusherlib import Pusher
from pusherlib.webhooks import MAX_AGE_SECONDS, WebhookRejected

from .channel_auth import Reply, refusal
from .hooks import PusherHooks


class ReplayGuard:
    """Remembers the webhooks already received, each until its time window closes, so the
    same signed body is accepted once (per route, in this process)."""

    def __init__(self, max_age: float = MAX_AGE_SECONDS, capacity: int = 100_000):
        self.max_age, self.capacity = max_age, capacity
        self._expiry: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, route: str, signature: str, time_ms: float) -> bool:
        """``True`` the first time this signed webhook is seen on ``route``."""
        key = (route, signature.strip().lower())
        now = time.time()
        with self._lock:
            while self._expiry and next(iter(self._expiry.values())) < now:
                self._expiry.popitem(last=False)
            if key in self._expiry:
                return False
            self._expiry[key] = time_ms / 1000.0 + self.max_age
            if len(self._expiry) > self.capacity:
                self._expiry.popitem(last=False)
            return True

    def release(self, route: str, signature: str) -> None:
        """Forget a webhook whose handling failed, so Pusher's retry is accepted."""
        with self._lock:
            self._expiry.pop((route, signature.strip().lower()), None)


def receive_webhook(
    client: Pusher,
    hooks: PusherHooks,
    guard: ReplayGuard,
    request: Any,
    *,
    key: str | None,
    signature: str | None,
    body: bytes,
    group: str | None = None,
) -> Reply:
    """Check a webhook (401 forged, mis-keyed, stale or replayed; 400 not a JSON object
    with events), then call the handlers of ``group`` and of each event's name."""
    try:
        webhook = client.check_webhook(key, signature, body, max_age=guard.max_age)
    except WebhookRejected as exc:
        return refusal(400 if exc.reason == "body" else 401, str(exc))
    events = webhook.get("events")
    if not isinstance(events, list) or not all(
        isinstance(event, dict) and isinstance(event.get("name"), str) for event in events
    ):
        return refusal(400, "the webhook body needs events: a list of objects with a name")
    route = group or "webhooks"
    signature = cast(str, signature)  # check_webhook refused a webhook without one
    if not guard.claim(route, signature, webhook["time_ms"]):
        return refusal(401, "this webhook was already received: replays are refused")
    try:
        for handler in hooks.webhooks.handlers[group] if group else ():
            handler(webhook, request)
        for event in events:
            for handler in hooks.event_handlers.get(event["name"], ()):
                handler(event, request)
    except BaseException:
        guard.release(route, signature)
        raise
    return Reply(200, {"ok": True, "events": len(events)})
