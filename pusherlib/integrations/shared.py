"""What the Flask and Django adapters share: Flask-Pusher's configuration names, the routes,
form fields read alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..client import Pusher
from ..endpoints import PusherHooks, Reply
from ..errors import PusherValueError

#: ``answer_channel_auth`` or ``answer_user_auth``: (client, hooks, request, form fields) -> Reply.
AuthAnswer = Callable[[Pusher, PusherHooks, Any, Mapping[str, str]], Reply]

#: The route of each endpoint under the prefix, and the configuration name that moves it
#: (and ``/events/<group>`` for each of :data:`pusherlib.endpoints.GROUP_ROUTES`).
DEFAULT_ROUTES = {"PUSHER_AUTH": "/auth", "PUSHER_USER_AUTH": "/user-auth", "PUSHER_WEBHOOKS": "/webhooks"}


def client_from_config(get: Callable[[str], Any], **options: Any) -> Pusher:
    """A client from Flask-Pusher's configuration names read with ``get(name)``: ``PUSHER_URL`` or
    ``PUSHER_APP_ID``/``KEY``/``SECRET`` and the others listed in docs/pusherlib.md."""
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


def first_values(fields: Mapping[str, Any]) -> dict[str, str]:
    """A form's fields, the first value of each (for MultiDict / QueryDict)."""
    getter = getattr(fields, "get", None)
    return {name: getter(name) for name in fields} if getter else dict(fields)
