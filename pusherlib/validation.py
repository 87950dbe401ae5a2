"""Checks on what is sent to Pusher before any I/O, Pusher's documented limits: channel names of
at most 164 of ``A-Za-z0-9_-=@,.;``, event names of at most 200 characters, 100 channels per
trigger, 10 events per batch, socket ids ``digits.digits``. ``pusher:`` and ``pusher_internal:``
events are refused (the protocol's own, never sent by a server)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import PusherTypeError, PusherValueError

MAX_CHANNEL_NAME_LENGTH = 164
MAX_EVENT_NAME_LENGTH = 200
MAX_CHANNELS_PER_TRIGGER = 100
MAX_BATCH_SIZE = 10
MAX_USER_ID_LENGTH = 200

SERVER_TO_USER_PREFIX = "#server-to-user-"
ENCRYPTED_PREFIX = "private-encrypted-"
RESERVED_EVENT_PREFIXES = ("pusher:", "pusher_internal:")

_NAME_RE = re.compile(r"[-a-zA-Z0-9_=@,.;]+")  # channel names and user ids
_SOCKET_ID_RE = re.compile(r"[0-9]+\.[0-9]+")  # ASCII digits: \d matches other scripts too
_INFO_ATTRIBUTE_RE = re.compile(r"[a-z_]+")


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise PusherTypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def _name(value: object, what: str, max_length: int, pattern: re.Pattern[str] | None = None) -> str:
    """``value`` if it is a non-empty str of at most ``max_length`` characters (all in
    ``pattern`` when given), else raise saying which rule it breaks."""
    name = _require_str(value, what)
    if not name:
        raise PusherValueError(f"{what} must not be empty")
    if len(name) > max_length:
        raise PusherValueError(f"{what} is {len(name)} characters long; at most {max_length} are allowed")
    if pattern is not None and not pattern.fullmatch(name):
        raise PusherValueError(f"invalid {what} {name[:80]!r}: use only letters, digits and _-=@,.;")
    return name


def channel_name(name: object) -> str:
    """Return ``name`` if it is a valid channel name (``#server-to-user-<id>`` included), else raise."""
    if isinstance(name, str) and name.startswith(SERVER_TO_USER_PREFIX):
        try:
            user_id(name[len(SERVER_TO_USER_PREFIX) :])
        except PusherValueError as exc:
            raise PusherValueError(f"invalid channel name {name[:80]!r}: {exc}") from None
        return name
    return _name(name, "channel name", MAX_CHANNEL_NAME_LENGTH, _NAME_RE)


def channel_list(channels: object) -> list[str]:
    """Accept one channel name or an iterable of them; return a checked list."""
    if isinstance(channels, str):
        return [channel_name(channels)]
    if not isinstance(channels, Iterable) or isinstance(channels, (bytes, dict)):
        raise PusherTypeError(f"channels must be a str or a list of str, not {type(channels).__name__}")
    names = [channel_name(c) for c in channels]
    if not names:
        raise PusherValueError("at least one channel is required")
    if len(names) > MAX_CHANNELS_PER_TRIGGER:
        raise PusherValueError(f"{len(names)} channels given; at most {MAX_CHANNELS_PER_TRIGGER} per trigger")
    return names


def event_name(name: object) -> str:
    """Return ``name`` if it is a valid event name, else raise."""
    name = _name(name, "event name", MAX_EVENT_NAME_LENGTH)
    utf8_size(name, "event name")
    if name.startswith(RESERVED_EVENT_PREFIXES):
        raise PusherValueError(
            f"event name {name[:80]!r} is reserved: names starting with "
            f"{' or '.join(RESERVED_EVENT_PREFIXES)} belong to the Pusher protocol"
        )
    return name


def socket_id(value: object) -> str:
    """Return ``value`` if it is a socket id (``digits.digits``), else raise."""
    value = _require_str(value, "socket_id")
    if not _SOCKET_ID_RE.fullmatch(value):
        raise PusherValueError(f"invalid socket_id {value[:40]!r}: expected digits.digits")
    return value


def user_id(value: object) -> str:
    """Return ``value`` if it can name a user in a ``#server-to-user-`` channel."""
    return _name(value, "user id", MAX_USER_ID_LENGTH, _NAME_RE)


def info_attributes(info: object) -> str | None:
    """Normalise ``info`` (a comma-separated str or an iterable of str) to a str or None."""
    if info is None:
        return None
    if isinstance(info, str):
        parts: Iterable[object] = info.split(",") if info else ()
    elif isinstance(info, Iterable) and not isinstance(info, (bytes, dict)):
        parts = info
    else:
        raise PusherTypeError(f"info must be a str or a list of str, not {type(info).__name__}")
    attributes = []
    for part in parts:
        if not isinstance(part, str) or not _INFO_ATTRIBUTE_RE.fullmatch(part):
            raise PusherValueError(f"invalid info attribute {part!r}")
        attributes.append(part)
    return ",".join(attributes) or None


def utf8_size(text: str, what: str) -> int:
    """The length of ``text`` in UTF-8; raise when it cannot be encoded (a lone surrogate,
    such as JSON's ``"\\ud800"`` read by Python, is not text)."""
    if text.isascii():  # constant time in CPython: ordinary data is never encoded here
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise PusherValueError(
            f"{what} is not valid Unicode: a lone surrogate {text[exc.start]!r} at character {exc.start}"
        ) from None


def payload_size(data: str, limit: int) -> None:
    """Raise when ``data`` is more than ``limit`` bytes once encoded as UTF-8, or is not text."""
    size = utf8_size(data, "event data")
    if size > limit:
        raise PusherValueError(f"event data is {size} bytes; at most {limit} are allowed")
