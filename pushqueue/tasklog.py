"""The recent task log: the last outcomes of this process's tasks, newest first.

An in-memory ring buffer (``collections.deque`` with a ``maxlen``): :func:`record` appends
one tuple, cheap enough for every task; :func:`recent` builds the dicts only when asked.
It is per process (each gunicorn worker and each App Engine instance has its own) and lost
on restart: a view for the demo page and for quick checks, not an audit trail (that is
the structured log).
"""

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
