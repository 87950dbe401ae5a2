"""The framework-neutral core every adapter calls, and the configuration they share.

The answers come from the app's ``handlers.pusher_auth`` package (framework-free: it does
not import webapp2), so webapp2, Flask and Django answer alike. This module is the one
place the adapters reach it, and where a request's body size is judged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from handlers.pusher_auth import (
    PusherHooks,
    ReplayGuard,
    Reply,
    answer_channel_auth,
    answer_user_auth,
    receive_webhook,
)

from ..client import Pusher
from ..errors import PusherValueError

#: ``answer_channel_auth`` or ``answer_user_auth``: (client, hooks, request, form fields) -> Reply.
AuthAnswer = Callable[[Pusher, PusherHooks, Any, Mapping[str, str]], Reply]

DEFAULT_MAX_BODY_BYTES = 64 * 1024
#: The route of each endpoint under the prefix, and the configuration name that moves it.
DEFAULT_ROUTES = {"PUSHER_AUTH": "/auth", "PUSHER_USER_AUTH": "/user-auth", "PUSHER_WEBHOOKS": "/webhooks"}
#: Flask-Pusher's webhook groups, each with a route ``/events/<group>``.
GROUPS = ("channel_existence", "presence", "client")

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_ROUTES",
    "GROUPS",
    "AuthAnswer",
    "PusherHooks",
    "ReplayGuard",
    "Reply",
    "answer_channel_auth",
    "answer_user_auth",
    "client_from_config",
    "first_values",
    "receive_webhook",
    "refusal_json",
    "reply_json",
]


def client_from_config(get: Callable[[str], Any], **options: Any) -> Pusher:
    """A client from Flask-Pusher's configuration names, read with ``get(name)``:
    ``PUSHER_URL``, or ``PUSHER_APP_ID``, ``PUSHER_KEY``, ``PUSHER_SECRET`` (+ ``PUSHER_HOST``,
    ``PUSHER_PORT``, ``PUSHER_SSL``, ``PUSHER_CLUSTER``, ``PUSHER_TIMEOUT``); and
    ``PUSHER_ENCRYPTION_MASTER_KEY_BASE64``, ``PUSHER_MAX_PAYLOAD_BYTES`` for either."""
    extra: dict[str, Any] = {}
    if get("PUSHER_ENCRYPTION_MASTER_KEY_BASE64"):
        extra["encryption_master_key_base64"] = get("PUSHER_ENCRYPTION_MASTER_KEY_BASE64")
    if get("PUSHER_MAX_PAYLOAD_BYTES"):
        extra["max_payload_bytes"] = int(get("PUSHER_MAX_PAYLOAD_BYTES"))
    if get("PUSHER_TIMEOUT"):
        extra["timeout"] = float(get("PUSHER_TIMEOUT"))
    extra.update(options)
    if get("PUSHER_URL"):
        return Pusher.from_url(get("PUSHER_URL"), **extra)
    missing = [name for name in ("PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET") if not get(name)]
    if missing:
        raise PusherValueError(
            f"set PUSHER_URL, or PUSHER_APP_ID, PUSHER_KEY and PUSHER_SECRET (missing: {', '.join(missing)})"
        )
    ssl = get("PUSHER_SSL")
    return Pusher(
        get("PUSHER_APP_ID"),
        get("PUSHER_KEY"),
        get("PUSHER_SECRET"),
        ssl=True if ssl in (None, "") else str(ssl).lower() not in ("0", "false", "no", "off"),
        host=get("PUSHER_HOST") or None,
        port=get("PUSHER_PORT") or None,
        cluster=get("PUSHER_CLUSTER") or None,
        **extra,
    )


def reply_json(reply: Reply) -> tuple[bytes, int, dict[str, str]]:
    """A reply as ``(body, status, headers)`` for any framework."""
    return (
        json.dumps(reply.body).encode("utf-8"),
        reply.status,
        {"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def refusal_json(status: int, message: str) -> tuple[bytes, int, dict[str, str]]:
    """``status`` with ``{"error": message}``."""
    return reply_json(Reply(status, {"error": message}))


def first_values(fields: Mapping[str, Any]) -> dict[str, str]:
    """A form's fields, the first value of each (for MultiDict / QueryDict)."""
    getter = getattr(fields, "get", None)
    return {name: getter(name) for name in fields} if getter else dict(fields)
