"""A per-caller limit on ``POST /push``: one token bucket per caller, in this process, the
least recently used forgotten first. The firewall recipe for a limit in front of every
instance: [docs/security.md](../docs/security.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

DEFAULT_CAPACITY = 10_000
#: Set by App Engine standard's front end on every request from outside (and stripped there
#: from what the client sent): the client's address.
APP_ENGINE_CLIENT_ADDRESS = "X-AppEngine-User-IP"


def client_address(request: Any, *, app_engine: bool) -> str | None:
    """The address an anonymous ``request`` (a WebOb request) is limited by: with
    ``app_engine`` (``GAE_ENV=standard``) ``X-AppEngine-User-IP``, else ``REMOTE_ADDR`` only."""
    if app_engine:
        return request.headers.get(APP_ENGINE_CLIENT_ADDRESS) or request.remote_addr
    return request.remote_addr


class RateLimiter:
    """Token buckets keyed by caller; ``rate`` 0 turns the limit off."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rate, self.burst, self.capacity = rate, burst, capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def wait(self, key: str) -> int | None:
        """Take one token from ``key``'s bucket: ``None`` when there was one, else the whole
        seconds to wait for the next."""
        if self.rate <= 0:
            return None
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
        return None if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))

    def __len__(self) -> int:
        return len(self._buckets)
