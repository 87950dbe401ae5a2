"""What every endpoint answers: a :class:`Reply` (an HTTP status and a JSON object), and
its bytes and headers for any web framework."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The largest request body the endpoints read (auth forms and webhooks are small).
DEFAULT_MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """What an endpoint answers: an HTTP status and a JSON object."""

    status: int
    body: dict[str, Any]


def refusal(status: int, message: str) -> Reply:
    """A refusal: ``status`` with ``{"error": message}``."""
    return Reply(status, {"error": message})


def reply_json(reply: Reply) -> tuple[bytes, int, dict[str, str]]:
    """A reply as ``(body, status, headers)`` for any framework (never cached)."""
    return (
        json.dumps(reply.body).encode("utf-8"),
        reply.status,
        {"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def refusal_json(status: int, message: str) -> tuple[bytes, int, dict[str, str]]:
    """``status`` with ``{"error": message}``, as ``(body, status, headers)``."""
    return reply_json(refusal(status, message))
