"""HMAC-SHA256 signatures Pusher asks for (API requests, auth, webhooks): pure functions."""

from __future__ import annotations

import hashlib
import hmac


def hmac_sha256_hex(secret: bytes, message: str | bytes) -> str:
    """Hex HMAC-SHA256 of ``message`` under ``secret``."""
    if isinstance(message, str):
        message = message.encode("utf-8")
    return hmac.digest(secret, message, "sha256").hex()


def body_md5(body: bytes) -> str:
    """The ``body_md5`` query parameter of a request with a non-empty body."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def string_to_sign(method: str, path: str, params: dict[str, str]) -> str:
    """``METHOD\\nPATH\\nk=v&...``: the parameters sorted by name and not URL-escaped."""
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return f"{method}\n{path}\n{query}"


def sign_request(
    key: str,
    secret: bytes,
    method: str,
    path: str,
    params: dict[str, str],
    body: bytes | None,
    timestamp: int,
) -> dict[str, str]:
    """Return ``params`` with the ``auth_*`` parameters and ``auth_signature`` added."""
    signed = dict(params)
    signed["auth_key"] = key
    signed["auth_timestamp"] = str(timestamp)
    signed["auth_version"] = "1.0"
    if body:  # Pusher's spec: only for a non-empty body
        signed["body_md5"] = body_md5(body)
    signed["auth_signature"] = hmac_sha256_hex(secret, string_to_sign(method, path, signed))
    return signed


def channel_auth_signature(
    secret: bytes, socket_id: str, channel: str, channel_data: str | None = None
) -> str:
    """Signature of ``socket_id:channel[:channel_data]`` for a subscription."""
    message = f"{socket_id}:{channel}"
    if channel_data is not None:
        message = f"{message}:{channel_data}"
    return hmac_sha256_hex(secret, message)


def user_auth_signature(secret: bytes, socket_id: str, user_data: str) -> str:
    """Signature of ``socket_id::user::user_data`` for ``pusher:signin``."""
    return hmac_sha256_hex(secret, f"{socket_id}::user::{user_data}")


def webhook_signature(secret: bytes, body: bytes) -> str:
    """The ``X-Pusher-Signature`` a webhook body must carry."""
    return hmac_sha256_hex(secret, body)
