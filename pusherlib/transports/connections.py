"""The connection policy both engines follow (the blocking transport and the NDB bridge).

* :class:`ConnectionPool`: idle keep-alive connections per host, newest first. One that was
  idle longer than ``keep_alive`` seconds, or that the server closed (or wrote to unasked),
  is closed when met instead of being handed out.
* :func:`may_resend`: a request is sent again only when it failed on a *reused* connection
  before any byte of an answer came back, and then once, on a *fresh* connection (a
  fresh connection is never reused for that, and its failure is final). A server that
  reads a POST and drops the connection sees it at most twice.
* Deadlines: a request that must wait for a connection (a transport's in-flight bound per
  host, or a thread) waits at most the *pool timeout* (:func:`turn_deadline`: the request's
  own timeout unless the transport sets ``pool_timeout``), then fails unsent with
  :func:`not_sent_error`. Once it has its turn, the exchange (connect, TLS, writing, every
  byte of the answer) has the request's whole ``timeout``: no exchange starts with too
  little time left to finish, which would time out after Pusher acted and be sent again.
* :func:`resolve`: a host's addresses within the request's deadline (name lookups run on a
  small thread pool, IP literals do not).
* :func:`exchange_error` and :func:`connect_error`: what a failed exchange or connect
  raises, the same from every transport (retryable pusherlib errors naming the host).
"""

from __future__ import annotations

import contextlib
import functools
import math
import select
import socket
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from ..errors import PusherConnectionError, PusherNotSent, PusherTimeout, PusherValueError
from .base import Request

DEFAULT_MAX_IDLE_PER_HOST = 16
DEFAULT_KEEP_ALIVE_SECONDS = 20.0  # below the usual 30-60 s after which servers close idle ones
RESOLVER_THREADS = 4

HostKey = tuple[str, str, int]
Address = tuple[int, int, int, Any]  # family, type, proto, sockaddr


def may_resend(reused: bool, answer_started: bool) -> bool:
    """Whether a request that failed may be sent again (on a fresh connection)."""
    return reused and not answer_started


class NoAnswer(ConnectionError):
    """The connection ended before any byte of an answer came back (see :func:`may_resend`)."""


def where(request: Request) -> str:
    """``host:port`` of ``request``, for messages."""
    return f"{request.host}:{request.port}"


def exchange_error(request: Request, error: BaseException) -> PusherConnectionError:
    """What a request raises once writing it or reading its answer failed with ``error``."""
    if isinstance(error, NoAnswer):
        return PusherConnectionError(f"{where(request)} closed the connection without answering")
    if isinstance(error, TimeoutError):
        return PusherTimeout(f"no answer from {where(request)} within {request.timeout} s")
    return PusherConnectionError(f"request to {where(request)} failed: {error}")


def check_pool_timeout(pool_timeout: float | None) -> float | None:
    """``pool_timeout`` if valid: None (the request's timeout) or finite seconds, at least 0."""
    if pool_timeout is not None and not 0 <= pool_timeout < math.inf:
        raise PusherValueError(f"pool_timeout must be a finite number of seconds, got {pool_timeout!r}")
    return pool_timeout


def turn_deadline(request: Request, pool_timeout: float | None, start: float) -> float:
    """When a request that started waiting for its turn at ``start`` gives up, unsent."""
    return start + (request.timeout if pool_timeout is None else pool_timeout)


def not_sent_error(request: Request, pool_timeout: float | None) -> PusherNotSent:
    """What a request raises when its turn did not come within the pool timeout."""
    waited = request.timeout if pool_timeout is None else pool_timeout
    return PusherNotSent(f"not sent: no connection to {where(request)} free within {waited} s")


def connect_error(
    request: Request, error: BaseException, address: str | None = None
) -> PusherConnectionError:
    """What a request raises once connecting to ``address`` (its host by default) failed."""
    address = address or where(request)
    if isinstance(error, TimeoutError):
        return PusherTimeout(f"connecting to {address} timed out ({request.timeout} s)")
    return PusherConnectionError(f"cannot connect to {address}: {error}")


def remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (a ``time.monotonic()`` value); TimeoutError if none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class ConnectionPool:
    """Idle connections per host (thread-safe): at most ``max_idle_per_host`` each, none kept
    longer than ``keep_alive`` seconds."""

    def __init__(
        self,
        max_idle_per_host: int = DEFAULT_MAX_IDLE_PER_HOST,
        keep_alive: float = DEFAULT_KEEP_ALIVE_SECONDS,
    ):
        self.max_idle_per_host = max_idle_per_host
        self.keep_alive = keep_alive
        self._idle: dict[HostKey, deque[tuple[float, socket.socket]]] = {}
        self._lock = threading.Lock()

    def checkout(self, key: HostKey) -> socket.socket | None:
        """The newest usable idle connection to ``key``, or None (then open a fresh one)."""
        idle = self._idle.get(key)
        while idle:
            try:
                since, sock = idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if time.monotonic() - since < self.keep_alive and not _dropped(sock):
                return sock
            close_quietly(sock)
        return None

    def checkin(self, key: HostKey, sock: socket.socket) -> None:
        """Keep ``sock`` for the next request to ``key``, unless the pool is full."""
        idle = self._idle.get(key)
        if idle is None:
            with self._lock:
                idle = self._idle.setdefault(key, deque())
        if len(idle) < self.max_idle_per_host:
            idle.append((time.monotonic(), sock))
        else:
            close_quietly(sock)

    def idle_count(self, key: HostKey) -> int:
        return len(self._idle.get(key, ()))

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            pools, self._idle = list(self._idle.values()), {}
        for idle in pools:
            while idle:
                close_quietly(idle.pop()[1])


def _dropped(sock: socket.socket) -> bool:
    """True when the peer closed (or wrote unasked): the connection is not reusable. ``poll``,
    not ``select``: a descriptor past 1,023 is out of ``select``'s range."""
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN)  # POLLHUP and POLLERR are reported too
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


# -- name resolution within a deadline -------------------------------------------------------

_resolver: ThreadPoolExecutor | None = None
_resolver_lock = threading.Lock()


def numeric_addresses(host: str, port: int) -> list[Address] | None:
    """The addresses of an IP literal, or None for a name that needs a lookup (a new list
    each time: callers pop from it)."""
    found = _numeric_addresses(host, port)
    return None if found is None else list(found)


@functools.lru_cache(maxsize=256)
def _numeric_addresses(host: str, port: int) -> tuple[Address, ...] | None:
    """What does not change: an IP literal's addresses (remembered), or None for a name."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None
    return tuple((family, kind, proto, address) for family, kind, proto, _, address in found)


def lookup(host: str, port: int) -> list[Address]:
    """A blocking name lookup (what the resolver threads run)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, kind, proto, address) for family, kind, proto, _, address in found]


def resolve_async(host: str, port: int) -> Future[list[Address]]:
    """Start looking ``host`` up on the resolver threads."""
    global _resolver
    if _resolver is None:
        with _resolver_lock:
            if _resolver is None:
                _resolver = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="pusherlib-resolver")
    return _resolver.submit(lookup, host, port)


def resolve(host: str, port: int, deadline: float) -> list[Address]:
    """``host``'s addresses, looked up before ``deadline`` (TimeoutError otherwise)."""
    addresses = numeric_addresses(host, port)
    if addresses is not None:
        return addresses
    try:
        return resolve_async(host, port).result(timeout=remaining(deadline))
    except FutureTimeout as exc:
        raise TimeoutError(f"looking up {host} timed out") from exc
