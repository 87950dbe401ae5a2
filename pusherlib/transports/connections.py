"""Blocking-socket helpers of the blocking and NDB drivers: :class:`ConnectionPool` (drops a
socket the server closed) and :func:`resolve` (name lookup within the request's deadline)."""

from __future__ import annotations

import contextlib
import functools
import select
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .core import DEFAULT_KEEP_ALIVE_SECONDS, DEFAULT_MAX_IDLE_PER_HOST, IdleConnections, remaining

RESOLVER_THREADS = 4

Address = tuple[int, int, int, Any]  # family, type, proto, sockaddr


def close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class ConnectionPool(IdleConnections[socket.socket]):
    """Idle sockets per host (thread-safe): at most ``max_idle_per_host`` each, none kept
    longer than ``keep_alive`` seconds."""

    def __init__(
        self,
        max_idle_per_host: int = DEFAULT_MAX_IDLE_PER_HOST,
        keep_alive: float = DEFAULT_KEEP_ALIVE_SECONDS,
    ):
        super().__init__(max_idle_per_host, keep_alive, _open, close_quietly)


def _open(sock: socket.socket) -> bool:
    """False when the peer closed (or wrote unasked): the connection is not reusable. ``poll``,
    not ``select``: a descriptor past 1,023 is out of ``select``'s range."""
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN)  # POLLHUP and POLLERR are reported too
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


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
