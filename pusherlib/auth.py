"""Tokens that let a browser subscribe to private, presence and encrypted channels, and
sign in as a user. Pure functions: the caller decides who may have them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from . import encryption, validation
from .errors import PusherTypeError, PusherValueError
from .signing import channel_auth_signature, user_auth_signature

AUTH_PREFIXES = ("private-", "presence-")


def authenticate_channel(
    *,
    key: str,
    secret: bytes,
    channel: str,
    socket_id: str,
    custom_data: Mapping[str, Any] | None = None,
    master_key: bytes | None = None,
    encode_json: Callable[[Any], str] = json.dumps,
) -> dict[str, str]:
    """The answer to ``socket_id`` subscribing to ``channel``: ``{"auth"}``; presence (``custom_data``
    with a ``user_id``) adds ``channel_data``; ``private-encrypted-`` adds ``shared_secret``."""
    channel = validation.channel_name(channel)
    socket_id = validation.socket_id(socket_id)
    if channel.startswith("presence-"):
        channel_data = encode_json(presence_member(custom_data))
        signature = channel_auth_signature(secret, socket_id, channel, channel_data)
        return {"auth": f"{key}:{signature}", "channel_data": channel_data}
    if not channel.startswith("private-"):
        raise PusherValueError(f"only private- and presence- channels are authenticated, not {channel!r}")
    answer = {"auth": f"{key}:{channel_auth_signature(secret, socket_id, channel)}"}
    if channel.startswith(validation.ENCRYPTED_PREFIX):
        secret_bytes = encryption.shared_secret(channel, master_key)
        answer["shared_secret"] = base64.b64encode(secret_bytes).decode("ascii")
    return answer


def presence_member(custom_data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check presence ``custom_data``: a ``user_id`` (str or int) and optional ``user_info``."""
    if not isinstance(custom_data, Mapping):
        raise PusherTypeError("presence channels need custom_data, a dict with a user_id")
    user_id = custom_data.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or user_id == "":
        raise PusherValueError("presence custom_data needs a non-empty user_id (str or int)")
    unknown = set(custom_data) - {"user_id", "user_info"}
    if unknown:
        raise PusherValueError(f"presence custom_data has unknown keys {sorted(unknown)}")
    return dict(custom_data)


def authenticate_user(
    *,
    key: str,
    secret: bytes,
    socket_id: str,
    user_data: Mapping[str, Any],
    encode_json: Callable[[Any], str] = json.dumps,
) -> dict[str, str]:
    """The answer to a ``pusher:signin`` request: ``{"auth", "user_data"}``."""
    socket_id = validation.socket_id(socket_id)
    if not isinstance(user_data, Mapping):
        raise PusherTypeError("user_data must be a dict with an id")
    if not isinstance(user_data.get("id"), str):
        raise PusherValueError("user_data needs an id: a non-empty str")
    validation.user_id(user_data["id"])
    encoded = encode_json(dict(user_data))
    return {"auth": f"{key}:{user_auth_signature(secret, socket_id, encoded)}", "user_data": encoded}
