"""The connection core every HTTP driver shares, without I/O: the pool's bookkeeping
(:class:`IdleConnections`, :class:`Turns`), the resend rule (:func:`may_resend`), the deadline
rule (:func:`turn_deadline`) and the errors. Why: RELIABILITY.md, 'The transport'."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from ..errors import PusherConnectionError, PusherError, PusherNotSent, PusherTimeout, PusherValueError
from .base import Request
from .http11 import ProtocolError

DEFAULT_MAX_IDLE_PER_HOST = 16
DEFAULT_KEEP_ALIVE_SECONDS = 20.0  # below the usual 30-60 s after which servers close idle ones

HostKey = tuple[str, str, int]
C = TypeVar("C")
W = TypeVar("W")


def host_key(request: Request) -> HostKey:
    """What connections are pooled by: scheme, host and port."""
    return (request.scheme, request.host, request.port)


# -- the rules ------------------------------------------------------------------------------


class NoAnswer(ConnectionError):
    """The connection ended before any byte of an answer came back (see :func:`may_resend`)."""


def may_resend(reused: bool, answer_started: bool) -> bool:
    """Whether a failed request may be sent again, once, on a fresh connection: only when it failed
    on a *reused* connection before any byte of an answer."""
    return reused and not answer_started


def check_pool_timeout(pool_timeout: float | None) -> float | None:
    """``pool_timeout`` if valid: None (the request's timeout) or finite seconds, at least 0."""
    if pool_timeout is not None and not 0 <= pool_timeout < math.inf:
        raise PusherValueError(f"pool_timeout must be a finite number of seconds, got {pool_timeout!r}")
    return pool_timeout


def turn_deadline(request: Request, pool_timeout: float | None, start: float) -> float:
    """When a request that started waiting for its turn at ``start`` gives up, unsent. Once
    it has its turn, its exchange gets the request's whole ``timeout``."""
    return start + (request.timeout if pool_timeout is None else pool_timeout)


def remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (a ``time.monotonic()`` value); TimeoutError if none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def where(request: Request) -> str:
    """``host:port`` of ``request``, for messages."""
    return f"{request.host}:{request.port}"


def not_sent_error(request: Request, pool_timeout: float | None) -> PusherNotSent:
    """What a request raises when its turn did not come within the pool timeout."""
    waited = request.timeout if pool_timeout is None else pool_timeout
    return PusherNotSent(f"not sent: no connection to {where(request)} free within {waited} s")


def exchange_error(request: Request, error: BaseException) -> PusherConnectionError:
    """What a request raises once writing it or reading its answer failed with ``error``."""
    if isinstance(error, NoAnswer):
        return PusherConnectionError(f"{where(request)} closed the connection without answering")
    if isinstance(error, TimeoutError):
        return PusherTimeout(f"no answer from {where(request)} within {request.timeout} s")
    return PusherConnectionError(f"request to {where(request)} failed: {error}")


def connect_error(
    request: Request, error: BaseException, address: str | None = None
) -> PusherConnectionError:
    """What a request raises once connecting to ``address`` (its host by default) failed."""
    address = address or where(request)
    if isinstance(error, TimeoutError):
        return PusherTimeout(f"connecting to {address} timed out ({request.timeout} s)")
    return PusherConnectionError(f"cannot connect to {address}: {error}")


LOOPBACK_HANDSHAKE_SECONDS = 1.0  # a TLS server on this machine answers within milliseconds
_PLAIN_HTTP_HINT = "is it a plain-HTTP server? Use http:// (ssl=False; PUSHER_SSL=false)"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def handshake_deadline(host: str, deadline: float) -> float:
    """When a TLS handshake with ``host`` must be done: on a loopback address within
    :data:`LOOPBACK_HANDSHAKE_SECONDS` (a plain-HTTP server there never answers the hello)."""
    if is_loopback(host):
        return min(deadline, time.monotonic() + LOOPBACK_HANDSHAKE_SECONDS)
    return deadline


def tls_error(request: Request, error: BaseException, address: str | None = None) -> PusherConnectionError:
    """What a failed TLS handshake raises: with a hint where the server may speak plain HTTP
    (no answer to the hello, or an answer that is not TLS)."""
    address = address or where(request)
    if isinstance(error, TimeoutError) or "WRONG_VERSION_NUMBER" in str(error):
        return PusherConnectionError(f"no TLS answer from {address}: {_PLAIN_HTTP_HINT}")
    return connect_error(request, error, address)


def as_pusher_error(error: BaseException, where: str) -> BaseException:
    """``error`` as pusherlib's: low-level failures become a (retryable) PusherConnectionError."""
    if isinstance(error, PusherError):
        return error
    if isinstance(error, TimeoutError):
        return PusherTimeout(f"no answer from {where} in time: {error}")
    if isinstance(error, (OSError, ValueError, ProtocolError)):
        return PusherConnectionError(f"request to {where} failed: {error}")
    return error


# -- the pool's bookkeeping --------------------------------------------------------------------


class IdleConnections(Generic[C]):
    """Idle keep-alive connections per host, newest first, at most ``max_idle_per_host``; none
    handed out past ``keep_alive`` seconds or once ``alive`` is false. Thread-safe."""

    def __init__(
        self,
        max_idle_per_host: int,
        keep_alive: float,
        alive: Callable[[C], bool],
        close: Callable[[C], object],
    ):
        self.max_idle_per_host = max_idle_per_host
        self.keep_alive = keep_alive
        self._alive, self._close = alive, close
        self._idle: dict[HostKey, deque[tuple[float, C]]] = {}
        self._lock = threading.Lock()

    def checkout(self, key: HostKey) -> C | None:
        """The newest usable idle connection to ``key``, or None (then open a fresh one)."""
        idle = self._idle.get(key)
        while idle:
            try:
                since, conn = idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if time.monotonic() - since < self.keep_alive and self._alive(conn):
                return conn
            self._close(conn)
        return None

    def checkin(self, key: HostKey, conn: C) -> None:
        """Keep ``conn`` for the next request to ``key``, unless the pool is full."""
        idle = self._idle.get(key)
        if idle is None:
            with self._lock:
                idle = self._idle.setdefault(key, deque())
        if len(idle) < self.max_idle_per_host:
            idle.append((time.monotonic(), conn))
        else:
            self._close(conn)

    def idle_count(self, key: HostKey) -> int:
        return len(self._idle.get(key, ()))

    def close(self) -> list[C]:
        """Close every idle connection; the ones closed."""
        with self._lock:
            pools, self._idle = list(self._idle.values()), {}
        closed = [conn for idle in pools for _, conn in idle]
        for conn in closed:
            self._close(conn)
        return closed


class Turns(Generic[W]):
    """Requests in flight per host, at most ``limit``; the rest wait in one FIFO per host.
    Not thread-safe: used from the driver's loop thread."""

    __slots__ = ("in_flight", "limit", "waiting")

    def __init__(self, limit: int):
        self.limit = limit
        self.in_flight: dict[HostKey, int] = {}
        self.waiting: dict[HostKey, deque[W]] = {}

    def take(self, key: HostKey) -> bool:
        """Take a turn now if one is free and nobody waits for one; else False (then ``wait``)."""
        count = self.in_flight.get(key, 0)
        if count < self.limit and not self.waiting.get(key):
            self.in_flight[key] = count + 1
            return True
        return False

    def wait(self, key: HostKey, waiter: W) -> None:
        """Queue ``waiter`` for the next free turn to ``key``."""
        waiting = self.waiting.get(key)
        if waiting is None:
            waiting = self.waiting[key] = deque()
        waiting.append(waiter)

    def next_waiter(self, key: HostKey) -> W | None:
        """The first waiter, given the turn being released (None: no one waits; then ``free``)."""
        waiting = self.waiting.get(key)
        return waiting.popleft() if waiting else None

    def free(self, key: HostKey) -> None:
        """Give a turn back."""
        self.in_flight[key] -= 1

    def admit(self, key: HostKey) -> W | None:
        """The first waiter, if a turn is free (then counted as taken); else None."""
        waiting = self.waiting.get(key)
        count = self.in_flight.get(key, 0)
        if waiting and count < self.limit:
            self.in_flight[key] = count + 1
            return waiting.popleft()
        return None
