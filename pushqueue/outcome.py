"""What becomes of a task after one attempt (delivered, retried, parked, logged), and the
status that tells the queue. Pure functions; the rules: docs/worker.md.
"""

from __future__ import annotations

from enum import StrEnum

from pusherlib import PusherError, PusherNotSent
from pusherlib.errors import is_permanent as pusher_refuses_for_good

SLOW_DOWN_STATUS = 429


class TaskRefused(Exception):
    """The task itself can never be served: a malformed body, an unknown URL or method."""


class Interrupted(Exception):
    """The server cut the attempt short (it is stopping): the task is retried."""


class Outcome(StrEnum):
    """The fate of one task attempt (also the names used in logs and the task log)."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    RETRIED = "retried"
    PARKED = "parked"
    LOGGED = "logged"  # to be parked, but the store refused it for good: kept in the error log


def is_permanent(error: BaseException) -> bool:
    """True when sending the same thing again cannot succeed."""
    return isinstance(error, TaskRefused) or pusher_refuses_for_good(error)


def classify(error: BaseException | None, attempt: int, max_attempts: int) -> Outcome:
    """The outcome of attempt number ``attempt`` (1 for the first) that ended with ``error``."""
    if error is None:
        return Outcome.DELIVERED
    if isinstance(error, Interrupted):
        return Outcome.RETRIED
    if is_permanent(error) or attempt >= max_attempts:
        return Outcome.PARKED
    return Outcome.RETRIED


def retry_status(error: BaseException | None) -> int:
    """The HTTP status that asks the queue to retry: 503 (slow the queue down) when Pusher
    asked us to slow down (429 or 5xx) or no connection to it was free (this instance is
    saturated), 500 for anything else."""
    if isinstance(error, PusherNotSent):
        return 503
    status = error.status if isinstance(error, PusherError) else None
    return 503 if status is not None and (status == SLOW_DOWN_STATUS or status >= 500) else 500
