"""What pusherlib tells about each request (a :class:`RequestRecord`): logged at DEBUG on the
``pusherlib`` logger and passed to ``on_request``; never the secret, signature, query or body."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import PusherError, PusherTypeError
from .transports.base import Request

log = logging.getLogger("pusherlib")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One attempt at a request; ``status`` is the HTTP status (or a 2xx error body's code), None
    without an answer; ``error`` the exception raised, if any."""

    method: str
    path: str
    status: int | None
    duration: float
    attempt: int
    error: PusherError | None = None


RequestHook = Callable[[RequestRecord], None]


class Instrumentation:
    """Reports each request of one client to the logger and to ``hook``."""

    def __init__(self, hook: RequestHook | None = None):
        if hook is not None and not callable(hook):
            raise PusherTypeError("on_request must be a callable taking a RequestRecord")
        self.hook = hook

    def report(
        self,
        request: Request,
        started: float,
        attempt: int,
        status: int | None,
        error: PusherError | None = None,
    ) -> None:
        """Log and hand over one finished attempt that began at ``started`` (perf_counter)."""
        record = RequestRecord(
            request.method,
            request.target.partition("?")[0],
            status,
            time.perf_counter() - started,
            attempt,
            error,
        )
        if log.isEnabledFor(logging.DEBUG):
            outcome = f"{record.status}" if error is None else f"{record.status} {type(error).__name__}"
            log.debug(
                "%s %s -> %s in %.1f ms (attempt %d)",
                record.method,
                record.path,
                outcome,
                record.duration * 1000,
                record.attempt,
            )
        if self.hook is not None:
            try:
                self.hook(record)
            except Exception:
                log.exception("the on_request hook failed; the request itself is unaffected")
