"""Checking that a webhook comes from Pusher: key, HMAC-SHA256 signature, age
(:func:`check_webhook`); :class:`Webhook` is the older object shape, and
:func:`webhook_from_request` reads a Django, Flask, WebOb or webapp2 request."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import encryption, strict_json, validation
from .errors import PusherTypeError, PusherValueError
from .signing import webhook_signature

MAX_AGE_SECONDS = 300

Token = tuple[str, str | bytes]  # an app key and its secret


class WebhookRejected(PusherValueError):
    """A webhook failed a check; ``reason`` says which: ``"key"``, ``"signature"``,
    ``"body"`` (not a JSON object with a numeric ``time_ms``) or ``"time"`` (too old or new)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def check_webhook(
    *,
    app_key: str,
    secret: bytes,
    key: str | None,
    signature: str | None,
    body: str | bytes,
    now: float | None = None,
    max_age: float = MAX_AGE_SECONDS,
    extra_tokens: Iterable[Token] = (),
    decode: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """The parsed body when genuine, else raise :class:`WebhookRejected`: ``key`` the app's (or one
    of ``extra_tokens``), signature of the exact body compared in constant time, a strict JSON
    object, ``time_ms`` within ``max_age`` of ``now``. A non-str/bytes body raises ``PusherTypeError``."""
    if not isinstance(body, (str, bytes, bytearray, memoryview)):
        raise PusherTypeError(
            f"the webhook body must be the raw request body (str or bytes), not {type(body).__name__}: "
            "the signature covers the exact bytes received, so pass request.body / request.get_data()"
        )
    if not isinstance(key, str) or not isinstance(signature, str):
        raise WebhookRejected("key", "the X-Pusher-Key and X-Pusher-Signature headers are required")
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    given = signature.strip().lower().encode("utf-8")
    key_ok = signature_ok = False
    for token_key, token_secret in [(app_key, secret), *extra_tokens]:
        if not hmac.compare_digest(key.encode("utf-8"), token_key.encode("utf-8")):
            continue
        key_ok = True
        token_bytes = token_secret.encode("utf-8") if isinstance(token_secret, str) else token_secret
        signature_ok |= hmac.compare_digest(given, webhook_signature(token_bytes, raw).encode())
    if not key_ok:
        raise WebhookRejected("key", "X-Pusher-Key is not this app's key")
    if not signature_ok:
        raise WebhookRejected("signature", "X-Pusher-Signature does not match the body")
    try:
        parsed = strict_json.loads(raw)
        if decode is not None:
            parsed = decode(raw.decode("utf-8"))
    except strict_json.JSONRefused as exc:
        raise WebhookRejected("body", f"the webhook body is refused: {exc}") from None
    except ValueError:
        raise WebhookRejected("body", "the webhook body is not JSON") from None
    time_ms = parsed.get("time_ms") if isinstance(parsed, dict) else None
    if isinstance(time_ms, bool) or not isinstance(time_ms, (int, float)):
        raise WebhookRejected("body", "the webhook body is not a JSON object with a numeric time_ms")
    current = time.time() if now is None else now
    if abs(current - time_ms / 1000.0) > max_age:
        raise WebhookRejected("time", f"the webhook's time_ms is more than {max_age:g} s from now")
    return parsed


def decrypt_events(webhook: dict[str, Any], master_key: bytes) -> None:
    """Decrypt in place the ``data`` of events on ``private-encrypted-`` channels; data that does
    not decrypt stays, with a ``decryption_error``."""
    events = webhook.get("events")
    for event in events if isinstance(events, list) else ():
        if not isinstance(event, dict):
            continue
        channel, data = event.get("channel"), event.get("data")
        if (
            isinstance(channel, str)
            and channel.startswith(validation.ENCRYPTED_PREFIX)
            and isinstance(data, str)
        ):
            try:
                event["data"] = encryption.decrypt_for_channel(channel, data, master_key)
            except PusherValueError as exc:
                event["decryption_error"] = str(exc)


class Webhook:
    """A received webhook: ``valid()`` says whether it is genuine, ``events()`` lists them."""

    def __init__(self, data: dict[str, Any] | None):
        self.data = data

    def valid(self) -> bool:
        """Whether the webhook passed every check."""
        return self.data is not None

    def events(self) -> list[dict[str, Any]]:
        """The webhook's events (none for an invalid webhook)."""
        events = self.data.get("events") if self.data else None
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []

    @property
    def time_ms(self) -> int | None:
        """When Pusher sent it, in milliseconds since the epoch."""
        return self.data.get("time_ms") if self.data else None


def webhook_from_request(request: Any) -> tuple[str | None, str | None, bytes]:
    """``(key, signature, body)`` of a Django, Flask/Werkzeug or WebOb/webapp2 request."""
    meta = getattr(request, "META", None)
    if isinstance(meta, dict):  # Django
        return meta.get("HTTP_X_PUSHER_KEY"), meta.get("HTTP_X_PUSHER_SIGNATURE"), request.body
    headers = request.headers
    get_data = getattr(request, "get_data", None)
    body = get_data() if callable(get_data) else request.body  # Flask, else WebOb
    return headers.get("X-Pusher-Key"), headers.get("X-Pusher-Signature"), body
