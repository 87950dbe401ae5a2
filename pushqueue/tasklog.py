"""The recent task log: this process's last task outcomes, newest first, in memory (a ring
buffer cheap to append to); lost on restart, not an audit trail."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

CAPACITY = 500

_entries: deque[tuple[float, str, str, str, str, int, int | None]] = deque(maxlen=CAPACITY)


def record(
    outcome: str, task: str, channel: str, event: str, retry_count: int = 0, status: int | None = None
) -> None:
    """Note that ``task`` (``event`` on ``channel``) was queued, delivered, retried or parked."""
    _entries.append((time.time(), outcome, task, channel, event, retry_count, status))


def recent(limit: int = 50) -> list[dict[str, Any]]:
    """The ``limit`` newest entries, newest first."""
    newest = list(_entries)[-limit:] if limit > 0 else []  # one copy, made while holding the GIL
    newest.reverse()
    return [
        {
            "time": at,
            "outcome": outcome,
            "task": task,
            "channel": channel,
            "event": event,
            "retry_count": retry_count,
            "pusher_status": status,
        }
        for at, outcome, task, channel, event, retry_count, status in newest
    ]


def clear() -> None:
    """Forget every entry."""
    _entries.clear()
