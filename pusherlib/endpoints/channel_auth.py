"""Answers to channel auth (single and pusher-js-auth batch) and user auth requests, from the
request's form fields to a :class:`~.replies.Reply`."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from .. import validation
from ..auth import AUTH_PREFIXES
from ..client import Pusher
from ..errors import PusherError
from .hooks import PusherHooks
from .policy import Subscription
from .replies import Reply, refusal

MAX_BATCH_CHANNELS = 100
_BATCH_FIELD = re.compile(r"channel_name\[(\d{1,4})\]")

log = logging.getLogger(__name__)


def answer_channel_auth(client: Pusher, hooks: PusherHooks, request: Any, fields: Mapping[str, str]) -> Reply:
    """Answer ``socket_id`` + ``channel_name`` (one channel) or ``channel_name[0]``,
    ``channel_name[1]``, ... (a pusher-js-auth batch: one entry per channel)."""
    socket_id = _socket_id(fields)
    if isinstance(socket_id, Reply):
        return socket_id
    batch = _batch_channels(fields)
    single = fields.get("channel_name")
    if single is not None and batch:
        return refusal(400, "send channel_name or channel_name[0], channel_name[1], ..., not both")
    if single is not None:
        return _answer_channel(client, hooks, request, single, socket_id)
    if not batch:
        return refusal(400, "channel_name is required")
    if len(batch) > MAX_BATCH_CHANNELS:
        return refusal(400, f"{len(batch)} channels in one batch; at most {MAX_BATCH_CHANNELS} are allowed")
    answers = {
        channel: _batch_entry(_answer_channel(client, hooks, request, channel, socket_id))
        for channel in batch
    }
    return Reply(200 if hooks.policy.has_subscribe_rules else 403, answers)


def answer_user_auth(client: Pusher, hooks: PusherHooks, request: Any, fields: Mapping[str, str]) -> Reply:
    """Answer a ``pusher:signin`` request (form ``socket_id``) for the signed-in user."""
    socket_id = _socket_id(fields)
    if isinstance(socket_id, Reply):
        return socket_id
    if not hooks.policy.has_subscribe_rules or hooks.signed_in_user is None:
        return refusal(403, "user authentication is not enabled on this server")
    user = hooks.signed_in_user(request, socket_id)
    if user is None:
        return refusal(403, "nobody is signed in")
    return _signed(lambda: client.authenticate_user(socket_id, user))


def _socket_id(fields: Mapping[str, str]) -> str | Reply:
    socket_id = fields.get("socket_id")
    if not socket_id:
        return refusal(400, "socket_id is required (a form field)")
    try:
        return validation.socket_id(socket_id)
    except PusherError as exc:
        return refusal(400, str(exc))


def _batch_channels(fields: Mapping[str, str]) -> list[str]:
    indexed = []
    for field in fields:
        match = _BATCH_FIELD.fullmatch(field)
        if match:
            indexed.append((int(match.group(1)), fields[field]))
    return [channel for _, channel in sorted(indexed)]


def _answer_channel(client: Pusher, hooks: PusherHooks, request: Any, channel: str, socket_id: str) -> Reply:
    try:
        validation.channel_name(channel)
    except PusherError as exc:
        return refusal(400, str(exc))
    if not channel.startswith(AUTH_PREFIXES):
        return refusal(400, f"{channel!r} is not a private- or presence- channel: it needs no auth")
    if not hooks.policy.may_subscribe(Subscription(request, channel, socket_id)).allowed:
        return refusal(403, f"this connection may not join {channel!r}")
    if channel.startswith(validation.ENCRYPTED_PREFIX) and not client.encrypted_channels_enabled:
        return refusal(404, "encrypted channels are not enabled on this server (no encryption master key)")
    member = _presence_member(hooks, request, channel, socket_id) if channel.startswith("presence-") else None
    return _signed(lambda: client.authenticate(channel, socket_id, member))


def _presence_member(hooks: PusherHooks, request: Any, channel: str, socket_id: str) -> dict[str, Any]:
    provided = dict(hooks.presence_data(request, channel, socket_id) or {}) if hooks.presence_data else {}
    member: dict[str, Any] = {"user_id": provided.pop("user_id", socket_id)}
    info = provided.pop("user_info", None)
    if provided:  # Flask-Pusher's shape: extra keys describe the user
        info = {**(info or {}), **provided}
    if info is not None:
        member["user_info"] = info
    return member


def _signed(sign: Callable[[], dict[str, str]]) -> Reply:
    """Sign with pusherlib; a refusal there is the server's fault (say, member data that is
    not JSON)."""
    try:
        return Reply(200, sign())
    except PusherError as exc:
        log.error("cannot sign a Pusher auth answer: %s", exc)
        return refusal(500, f"the server cannot sign this answer: {exc}")


def _batch_entry(reply: Reply) -> dict[str, Any]:
    if reply.status == 200:
        return {"status": 200, "data": reply.body}
    if reply.status == 403:
        return {"status": 403}
    return {"status": reply.status, **reply.body}
