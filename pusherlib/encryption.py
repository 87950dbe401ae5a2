"""End-to-end encryption for ``private-encrypted-`` channels (NaCl secretbox; key per channel
SHA-256(name + master key)). PyNaCl is imported only when used (``pusherlib[encryption]``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .errors import PusherValueError

MASTER_KEY_LENGTH = 32


def parse_master_key(encryption_master_key_base64: str | bytes) -> bytes:
    """Decode and check a base64 master key of 32 bytes."""
    try:
        key = base64.b64decode(encryption_master_key_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PusherValueError(f"encryption_master_key_base64 is not valid base64: {exc}") from None
    if len(key) != MASTER_KEY_LENGTH:
        raise PusherValueError(f"encryption master key must be {MASTER_KEY_LENGTH} bytes, got {len(key)}")
    return key


def master_key(raw: str | bytes | None, base64_key: str | bytes | None) -> bytes | None:
    """The master key given either way: ``raw`` (the official library's older
    ``encryption_master_key``, 32 bytes as they are) or ``base64_key``; not both."""
    if raw is not None and base64_key is not None:
        raise PusherValueError("give encryption_master_key_base64 or encryption_master_key, not both")
    if raw is not None:
        key = raw.encode("utf-8") if isinstance(raw, str) else raw
        if not isinstance(key, bytes) or len(key) != MASTER_KEY_LENGTH:
            raise PusherValueError(f"encryption_master_key must be {MASTER_KEY_LENGTH} bytes")
        return key
    return parse_master_key(base64_key) if base64_key else None


def shared_secret(channel: str, master_key: bytes | None) -> bytes:
    """The 32-byte key of one encrypted channel (``master_key``: ``None`` when none is set)."""
    if master_key is None:
        raise PusherValueError("private-encrypted- channels need encryption_master_key_base64 to be set")
    return hashlib.sha256(channel.encode("utf-8") + master_key).digest()


def _nacl() -> Any:
    """PyNaCl, or a ``PusherValueError`` saying how to install it."""
    try:
        import nacl.exceptions
        import nacl.secret
        import nacl.utils
    except ImportError:
        raise PusherValueError(
            "encrypted channels need PyNaCl: pip install PyNaCl (or pusherlib[encryption])"
        ) from None
    return nacl


def encrypt(channel: str, data: str, master_key: bytes | None) -> str:
    """Encrypt ``data`` for ``channel``: the JSON ``{"nonce", "ciphertext"}`` to send."""
    nacl = _nacl()
    box = nacl.secret.SecretBox(shared_secret(channel, master_key))
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = box.encrypt(data.encode("utf-8"), nonce).ciphertext
    return json.dumps(
        {
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
        }
    )


def decrypt(payload: str | Mapping[str, str], secret: bytes) -> str:
    """Decrypt an event payload with a channel's shared secret (what pusher-js does)."""
    fields: Mapping[str, str] = json.loads(payload) if isinstance(payload, str) else payload
    box = _nacl().secret.SecretBox(secret)
    nonce = base64.b64decode(fields["nonce"])
    ciphertext = base64.b64decode(fields["ciphertext"])
    return box.decrypt(ciphertext, nonce).decode("utf-8")


def decrypt_for_channel(channel: str, payload: str, master_key: bytes) -> str:
    """Decrypt ``payload`` (``{"nonce", "ciphertext"}`` as JSON) sent on encrypted
    ``channel``; anything that does not decrypt raises ``PusherValueError``."""
    nacl = _nacl()
    try:
        return decrypt(payload, shared_secret(channel, master_key))
    except (ValueError, KeyError, TypeError, nacl.exceptions.CryptoError) as exc:
        raise PusherValueError(f"the data on {channel!r} does not decrypt: {type(exc).__name__}") from None
