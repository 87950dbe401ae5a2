"""What becomes of a task after one attempt: delivered, retried or parked. Pure functions.

* Pusher accepted it: **delivered**.
* It can never succeed as it is (Pusher answered 400 or 413, or the event fails
  pusherlib's checks, or the task itself is malformed): **parked** at once.
* Anything else (timeouts, connection failures, 5xx, 429, and 401/403 while an operator
  fixes the credentials or the quota, or an unexpected error): **retried** by the queue
  with its backoff, until the attempt number reaches ``max_attempts``: then **parked**.
* A task coming from the parked queue (an operator's replay) that fails is never parked
  again: it is **retried**, i.e. answered with an error, so that it stays parked.
"""

from __future__ import annotations

from enum import StrEnum

PERMANENT_STATUSES = frozenset({400, 413})
CONFIGURATION_STATUSES = frozenset({401, 403})


class Outcome(StrEnum):
    """The fate of one task attempt (also the names used in logs and the task log)."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    RETRIED = "retried"
    PARKED = "parked"


def is_permanent(error: BaseException) -> bool:
    """True when sending the same thing again cannot succeed."""
    if isinstance(error, (ValueError, TypeError)):  # pusherlib's checks, a malformed task
        return True
    return getattr(error, "status", None) in PERMANENT_STATUSES


def classify(
    error: BaseException | None, attempt: int, max_attempts: int, *, from_parked_queue: bool = False
) -> Outcome:
    """The outcome of attempt number ``attempt`` (1 for the first) that ended with ``error``."""
    if error is None:
        return Outcome.DELIVERED
    if from_parked_queue:
        return Outcome.RETRIED
    if is_permanent(error) or attempt >= max_attempts:
        return Outcome.PARKED
    return Outcome.RETRIED


def retry_status(error: BaseException | None) -> int:
    """The HTTP status that asks the queue to retry: 500 for a configuration problem
    (Pusher refused the credentials or the app), 503 for a passing one."""
    return 500 if getattr(error, "status", None) in CONFIGURATION_STATUSES else 503
