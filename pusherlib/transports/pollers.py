"""How the NDB driver waits for its sockets: epoll on Linux, :mod:`selectors` elsewhere (never
``select.select``: it fails past 1,024 descriptors)."""

from __future__ import annotations

import contextlib
import select
import selectors
import socket
from typing import Any


def wait_ready(poller: Poller, timeout: float) -> None:
    """Run by a waker thread: return when a connection is ready or ``timeout`` passed."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        poller.wait(timeout)


class Poller:
    """The driver's sockets and the waiter of each, on :mod:`selectors`; ``poll`` returns
    ``(waiter, events)`` pairs (the poller itself for a socket unregistered since)."""

    READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def register(self, sock: socket.socket, events: int, waiter: Any) -> None:
        self._selector.register(sock, events, waiter)

    def modify(self, sock: socket.socket, events: int, waiter: Any) -> None:
        self._selector.modify(sock, events, waiter)

    def unregister(self, sock: socket.socket) -> None:
        """Forget ``sock`` (before closing it); nothing if it is not registered."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def poll(self, timeout: float) -> list[tuple[Any, int]]:
        return [(key.data, events) for key, events in self._selector.select(timeout)]

    def wait(self, timeout: float) -> None:
        """Return when a socket is ready or ``timeout`` passed (from any thread)."""
        self._selector.select(timeout)

    def close(self) -> None:
        self._selector.close()


class EpollPoller(Poller):
    """:class:`Poller` on epoll directly, with less work per call; EPOLLHUP and EPOLLERR count as readable."""

    READ, WRITE = select.EPOLLIN, select.EPOLLOUT

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._waiters: dict[int, Any] = {}

    def register(self, sock: socket.socket, events: int, waiter: Any) -> None:
        fd = sock.fileno()
        self._epoll.register(fd, events)
        self._waiters[fd] = waiter

    def modify(self, sock: socket.socket, events: int, waiter: Any) -> None:
        fd = sock.fileno()
        self._epoll.modify(fd, events)
        self._waiters[fd] = waiter

    def unregister(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self._waiters.pop(fd, self) is not self:
            try:  # noqa: SIM105 - for every request, cheaper than contextlib.suppress
                self._epoll.unregister(fd)
            except OSError:  # closed already (then no longer in the epoll set)
                pass

    def poll(self, timeout: float) -> list[tuple[Any, int]]:
        waiters = self._waiters
        return [(waiters.get(fd, self), events) for fd, events in self._epoll.poll(timeout)]

    def wait(self, timeout: float) -> None:
        self._epoll.poll(timeout)

    def close(self) -> None:
        self._epoll.close()


def new_poller() -> Poller:
    return EpollPoller() if hasattr(select, "epoll") else Poller()
