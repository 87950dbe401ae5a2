"""google-cloud-ndb futures for pusherlib's requests.

Inside a ``google.cloud.ndb`` context the ``*_async`` methods return an NDB future
(``ndb.tasklets.Future``): a tasklet can ``yield`` it, the code that made it can read it
with ``result()``, and every error arrives through it, pusherlib's errors only (a failed
``socket()``, name lookup or connect included). Many requests in flight run concurrently.

**A future can be read only in the NDB context that made it** (in that context's thread):
its answer is read by that context's event loop. Reading it elsewhere fails with
``Eventloop is exhausted with unfinished futures`` or waits for nothing.

:class:`NdbBridge` serves the default :class:`~pusherlib.transports.http.HTTPTransport`:
a request is written at once on a non-blocking connection (from the transport's pool, or
one being opened: connect and TLS handshake do not block either), and answers are read in
the event loop's thread. It uses only the event loop's public calls: when the loop has
nothing else to do, it waits in ``queue_rpc`` for a "waker", a concurrent future that a
helper thread completes as soon as one of the bridge's connections is ready (or a deadline
is near), exactly as the loop waits for gRPC calls. Its callback then reads everything that
is ready, for at most :data:`TURN_SECONDS`, so other work of the same loop (timers, gRPC
answers, tasklets) waits at most that long.

:class:`ThreadedNdbBridge` serves any other transport, and HTTPTransport through a proxy:
its blocking ``send`` runs on a thread pool, and the result reaches the event loop through
``queue_rpc``. Transports with only ``send`` get it by subclassing
:class:`ThreadedNdbFutures`.

Both follow :mod:`.connections`: a request waits for a free connection (or thread) at most
the pool timeout, then fails unsent; once it has one, its ``timeout`` is a deadline for the
exchange.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import os
import select
import selectors
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from google.cloud.ndb import _eventloop, tasklets  # type: ignore[import-untyped]

from ..errors import PusherConnectionError, PusherError, PusherTimeout
from .base import Request, Response, Transport
from .connections import (
    Address,
    HostKey,
    check_pool_timeout,
    close_quietly,
    may_resend,
    not_sent_error,
    numeric_addresses,
    remaining,
    resolve_async,
    turn_deadline,
)
from .http11 import ProtocolError, ResponseParser

T = TypeVar("T")

DEFAULT_MAX_WORKERS = 16
RECEIVE_BYTES = 65536
CONNECT_PENDING = (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)
# One turn of reading answers lasts at most this long (other work of the loop waits that long).
TURN_SECONDS = 0.02
# Within a turn, wait this long for more answers before handing back to the loop.
LINGER_SECONDS = 0.002
# Deadlines are checked this often while answers are read.
EXPIRY_CHECK_SECONDS = 0.01
# A waker wakes at least this often, to fail requests whose deadline passed.
WAKER_MAX_WAIT_SECONDS = 0.1
WAKER_THREADS = 64  # one per event loop waiting at the same time
# Sockets made non-blocking from the start where the platform can (no extra system call).
SOCK_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)


def as_pusher_error(error: BaseException, where: str) -> BaseException:
    """``error`` as pusherlib's: low-level failures become a (retryable) PusherConnectionError."""
    if isinstance(error, PusherError):
        return error
    if isinstance(error, TimeoutError):
        return PusherTimeout(f"no answer from {where} in time: {error}")
    if isinstance(error, (OSError, ValueError, ProtocolError)):
        return PusherConnectionError(f"request to {where} failed: {error}")
    return error


class NdbBridge:
    """Requests of one :class:`HTTPTransport`, sent and read in the NDB event loop's thread.

    At most ``max_connections`` requests per host are in flight from one event loop (by
    default the transport's ``max_idle_per_host``, at least one); the others wait for a
    connection at most the transport's ``pool_timeout``.
    """

    def __init__(self, transport: Any, max_connections: int | None = None):
        self._transport = transport
        self.pool = transport.pool
        self.pool_timeout: float | None = transport.pool_timeout
        self.max_connections = max_connections or max(1, transport.max_idle_per_host)
        self.last_key: HostKey | None = None

    def submit(self, request: Request, read: Callable[[Response], T]) -> tasklets.Future:
        """Send ``request`` now; return an NDB future of ``read(response)``."""
        future = tasklets.Future(info=f"pusherlib {request.method} {request.target.split('?', 1)[0]}")
        deadline = time.monotonic() + request.timeout
        try:
            exchange = _Exchange(self, request, self._transport.encode(request), read, future, deadline)
            _loop_driver().add(exchange)
        except Exception as exc:  # every error arrives through the future
            if not future.done():
                future.set_exception(as_pusher_error(exc, f"{request.host}:{request.port}"))
        return future

    def new_parser(self, request: Request) -> ResponseParser:
        return ResponseParser(request.method == "HEAD", max_body_bytes=self._transport.max_response_bytes)

    def wrap_tls(self, sock: socket.socket, host: str) -> ssl.SSLSocket:
        """``sock`` under TLS (the transport's context), its handshake not done yet."""
        return self._transport.tls_context().wrap_socket(
            sock, server_hostname=host, do_handshake_on_connect=False
        )

    def close(self) -> None:
        """Nothing of its own: connections are the transport's pool's."""


# What an exchange waits for.
RESOLVING, CONNECTING, HANDSHAKING, EXCHANGING = "resolving", "connecting", "handshaking", "exchanging"


class _Exchange:
    """One request in flight: its connection, what to send, what came back so far.

    Thousands may wait for a connection at once: they hold no more objects than needed
    (a parser from the first send, one host key per host, no address list), as every object
    alive counts towards the next garbage collection."""

    __slots__ = (
        "addresses",
        "bridge",
        "data",
        "deadline",
        "future",
        "key",
        "lookup",
        "parser",
        "read",
        "request",
        "reused",
        "sent",
        "sock",
        "state",
    )

    def __init__(
        self,
        bridge: NdbBridge,
        request: Request,
        data: bytes,
        read: Callable[[Response], Any],
        future: tasklets.Future,
        deadline: float,
    ):
        self.bridge, self.request, self.data, self.read, self.future = bridge, request, data, read, future
        self.deadline = deadline
        key = (request.scheme, request.host, request.port)
        if key == bridge.last_key:
            key = bridge.last_key  # this one is dropped at once
        else:
            bridge.last_key = key
        self.key: HostKey = key
        self.sock: socket.socket | None = None
        self.state = EXCHANGING
        self.addresses: list[Address] | tuple[()] = ()  # a list when connecting
        self.lookup: ThreadFuture[list[Address]] | None = None
        self.reused = False
        self.sent = 0
        self.parser: ResponseParser  # made by each send, before the first byte goes

    def where(self) -> str:
        return f"{self.request.host}:{self.request.port}"


_drivers: weakref.WeakKeyDictionary[Any, _LoopDriver] = weakref.WeakKeyDictionary()
_wakers: ThreadPoolExecutor | None = None
_wakers_lock = threading.Lock()


def _loop_driver() -> _LoopDriver:
    """The driver of the current NDB context's event loop (made when first needed)."""
    loop = _eventloop.get_event_loop()
    driver = _drivers.get(loop)
    if driver is None or driver.closed:
        driver = _drivers[loop] = _LoopDriver()
    return driver


def _waker_pool() -> ThreadPoolExecutor:
    global _wakers
    if _wakers is None:
        with _wakers_lock:
            if _wakers is None:
                _wakers = ThreadPoolExecutor(WAKER_THREADS, thread_name_prefix="pusherlib-waker")
    return _wakers


def _wait_ready(poller: _Poller, timeout: float) -> None:
    """Run by a waker thread: return when a connection is ready or ``timeout`` passed."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        poller.wait(timeout)


class _Poller:
    """The driver's sockets and what waits on each (an exchange, or None for the wake pipe),
    on the platform's :mod:`selectors` selector. ``poll`` returns ``(waiter, events)`` pairs,
    the waiter as registered when polled, or the poller itself for a socket unregistered
    since; ``events & ~WRITE`` for a readable (or failed) socket."""

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


class _EpollPoller(_Poller):
    """:class:`_Poller` on Linux's epoll directly: the same, with less work per call (this
    runs several times for every request). Events are epoll's: all but EPOLLOUT (EPOLLHUP,
    EPOLLERR) mean readable, as :mod:`selectors` has them."""

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


def _new_poller() -> _Poller:
    return _EpollPoller() if hasattr(select, "epoll") else _Poller()


class _LoopDriver:
    """The requests in flight from one NDB event loop, and the waker that reads them."""

    def __init__(self) -> None:
        self.closed = False
        self._poller = poller = _new_poller()
        self._read, self._write, self._readable = poller.READ, poller.WRITE, ~poller.WRITE
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        poller.register(self._wake_reader, poller.READ, None)
        self._in_flight: dict[NdbBridge, int] = {}
        self._waiting: dict[NdbBridge, deque[_Exchange]] = {}
        self._started: set[_Exchange] = set()
        self._waker_armed = False
        self._next_queue_scan = 0.0
        self._next_expiry_check = 0.0
        self._starting_waiting = False

    def add(self, exchange: _Exchange) -> None:
        """Send ``exchange`` now, or as soon as one of its bridge's connections is free."""
        bridge = exchange.bridge
        if self._in_flight.get(bridge, 0) < bridge.max_connections:
            self._in_flight[bridge] = self._in_flight.get(bridge, 0) + 1
            self._start(exchange)
        else:  # until its turn comes, its deadline is the pool timeout's
            start = exchange.deadline - exchange.request.timeout
            exchange.deadline = turn_deadline(exchange.request, bridge.pool_timeout, start)
            self._waiting.setdefault(bridge, deque()).append(exchange)
        if not self._waker_armed:
            self._arm()

    # -- waiting in the event loop ------------------------------------------------------

    def _arm(self) -> None:
        """Have the event loop wait for this driver's connections (one waker at a time)."""
        if self._waker_armed or self.closed:
            return
        if not self._started and not any(self._waiting.values()):
            self._retire()
            return
        deadlines = [exchange.deadline for exchange in self._started]
        wait = min([WAKER_MAX_WAIT_SECONDS, *(deadline - time.monotonic() for deadline in deadlines)])
        self._waker_armed = True
        _eventloop.queue_rpc(_waker_pool().submit(_wait_ready, self._poller, max(0.0, wait)), self._woken)

    def _woken(self, _waker: ThreadFuture[None]) -> None:
        """The waker's callback, in the loop's thread: one turn of reading answers."""
        self._waker_armed = False
        try:
            self._turn()
        finally:
            self._arm()

    def _turn(self) -> None:
        """Read what is ready, then whatever becomes ready within :data:`LINGER_SECONDS`
        of the last answer, until nothing is in flight or :data:`TURN_SECONDS` passed."""
        turn_ends = time.monotonic() + TURN_SECONDS
        poll, poller = self._poller.poll, self._poller
        while self._started:
            ready = poll(LINGER_SECONDS)  # returns at once when something is ready
            if not ready:
                break
            for waiter, events in ready:
                if waiter is None:
                    self._drain_wake_pipe()
                elif waiter is not poller:  # else unregistered since (a stale event)
                    self._ready(waiter, events)
            now = time.monotonic()
            if now >= turn_ends:
                break
            if now >= self._next_expiry_check:
                self._expire(now)
        self._expire(time.monotonic())

    def _drain_wake_pipe(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_reader.recv(4096):
                pass
        for exchange in [exchange for exchange in self._started if exchange.state is RESOLVING]:
            if exchange.lookup is not None and exchange.lookup.done():
                try:
                    self._resolved(exchange)
                except Exception as exc:  # socket() failed, say: through the future
                    self._fail(exchange, as_pusher_error(exc, exchange.where()))

    def _wake(self, _done: object = None) -> None:
        """Wake the waker (from any thread): a name lookup finished."""
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"!")

    def _retire(self) -> None:
        """Nothing in flight: close the poller and the wake pipe."""
        self.closed = True
        self._poller.close()
        close_quietly(self._wake_reader)
        close_quietly(self._wake_writer)

    def _ready(self, exchange: _Exchange, events: int) -> None:
        try:
            if exchange.state is CONNECTING:
                self._connected(exchange)
            elif exchange.state is HANDSHAKING:
                self._handshake(exchange)
            elif events & self._readable:
                self._receive(exchange)
            else:
                self._send_more(exchange)
        except Exception as exc:  # a bug or an unexpected error: still through the future
            if exchange in self._started:
                self._fail(exchange, as_pusher_error(exc, exchange.where()))

    # -- connecting -------------------------------------------------------------------

    def _start(self, exchange: _Exchange) -> None:
        """Send on a pooled connection, or start opening one (the slot is already taken)."""
        self._started.add(exchange)
        try:
            remaining(exchange.deadline)
            sock = exchange.bridge.pool.checkout(exchange.key)
            if sock is not None:
                sock.setblocking(False)
                self._send_on(exchange, sock, reused=True, registered=False)
            else:
                self._connect_fresh(exchange)
        except Exception as exc:
            self._fail(exchange, as_pusher_error(exc, exchange.where()))

    def _connect_fresh(self, exchange: _Exchange) -> None:
        request = exchange.request
        addresses = numeric_addresses(request.ascii_host, request.port)
        if addresses is not None:
            exchange.addresses = addresses
            self._connect_next(exchange)
            return
        exchange.state = RESOLVING
        exchange.lookup = resolve_async(request.ascii_host, request.port)
        exchange.lookup.add_done_callback(self._wake)

    def _resolved(self, exchange: _Exchange) -> None:
        assert exchange.lookup is not None
        try:
            exchange.addresses = exchange.lookup.result()
        except OSError as exc:
            self._fail(exchange, PusherConnectionError(f"cannot connect to {exchange.where()}: {exc}"))
            return
        exchange.lookup = None
        self._connect_next(exchange)

    def _connect_next(self, exchange: _Exchange) -> None:
        """Start connecting to the next address of the host (a non-blocking connect)."""
        family, kind, proto, address = exchange.addresses.pop(0)
        sock = socket.socket(family, kind | SOCK_NONBLOCK, proto)
        try:
            if not SOCK_NONBLOCK:
                sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
        except OSError:
            sock.close()
            raise
        if code not in CONNECT_PENDING:
            sock.close()
            self._next_address_or_fail(exchange, OSError(code, os.strerror(code)))
            return
        if exchange.request.scheme != "https":
            # Often connected already (always on loopback): write the request now rather
            # than after a wait for writability. Until the connection is up the kernel
            # takes nothing (EAGAIN); a failed connect fails this first send, before any
            # byte of the request left, so the next address may still be tried.
            try:
                sent = sock.send(exchange.data)
            except BlockingIOError:
                pass
            except OSError as exc:
                sock.close()
                self._next_address_or_fail(exchange, exc)
                return
            else:
                exchange.sock, exchange.reused, exchange.state, exchange.sent = sock, False, EXCHANGING, sent
                exchange.parser = exchange.bridge.new_parser(exchange.request)
                self._poller.register(sock, self._events_after_send(exchange), exchange)
                return
        exchange.sock, exchange.state, exchange.reused = sock, CONNECTING, False
        self._poller.register(sock, self._write, exchange)

    def _connected(self, exchange: _Exchange) -> None:
        sock = exchange.sock
        assert sock is not None
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._drop_socket(exchange)
            self._next_address_or_fail(exchange, OSError(code, os.strerror(code)))
        elif exchange.request.scheme == "https":
            self._poller.unregister(sock)
            exchange.sock = None
            try:
                exchange.sock = exchange.bridge.wrap_tls(sock, exchange.request.ascii_host)
            except (OSError, ValueError) as exc:
                sock.close()
                self._fail(exchange, PusherConnectionError(f"cannot connect to {exchange.where()}: {exc}"))
                return
            exchange.state = HANDSHAKING
            self._poller.register(exchange.sock, self._write, exchange)
            self._handshake(exchange)
        else:
            self._send_on(exchange, sock, reused=False)

    def _handshake(self, exchange: _Exchange) -> None:
        sock = exchange.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._poller.modify(sock, self._read, exchange)
        except ssl.SSLWantWriteError:
            self._poller.modify(sock, self._write, exchange)
        except (OSError, ValueError) as exc:
            self._fail(exchange, PusherConnectionError(f"cannot connect to {exchange.where()}: {exc}"))
        else:
            self._send_on(exchange, sock, reused=False)

    def _next_address_or_fail(self, exchange: _Exchange, error: OSError) -> None:
        if exchange.addresses:
            self._connect_next(exchange)
        else:
            self._fail(exchange, PusherConnectionError(f"cannot connect to {exchange.where()}: {error}"))

    # -- one exchange -----------------------------------------------------------------

    def _send_on(
        self, exchange: _Exchange, sock: socket.socket, reused: bool, registered: bool = True
    ) -> None:
        """Write ``exchange`` on ``sock``, then wait for what it needs next (``registered``:
        whether ``sock`` is registered with this driver already)."""
        exchange.sock, exchange.reused, exchange.state = sock, reused, EXCHANGING
        exchange.sent = 0
        exchange.parser = exchange.bridge.new_parser(exchange.request)
        self._send_more(exchange, registered)

    def _send_more(self, exchange: _Exchange, registered: bool = True) -> None:
        sock = exchange.sock
        assert sock is not None
        try:
            exchange.sent += sock.send(exchange.data[exchange.sent :] if exchange.sent else exchange.data)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError as exc:
            self._broken(exchange, exc)
            return
        if registered:
            self._poller.modify(sock, self._events_after_send(exchange), exchange)
        else:
            self._poller.register(sock, self._events_after_send(exchange), exchange)

    def _events_after_send(self, exchange: _Exchange) -> int:
        """Wait for the answer, and for room to write the rest if some is left."""
        if exchange.sent >= len(exchange.data):
            return self._read
        return self._read | self._write

    def _receive(self, exchange: _Exchange) -> None:
        sock = exchange.sock
        assert sock is not None
        try:
            chunk = sock.recv(RECEIVE_BYTES)
            while chunk and isinstance(sock, ssl.SSLSocket) and sock.pending():
                chunk += sock.recv(sock.pending())
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            self._broken(exchange, exc)
            return
        if not chunk and not exchange.parser.started:
            self._broken(exchange, ConnectionResetError("closed by the server"))
            return
        try:
            parsed = exchange.parser.feed(chunk)
        except ProtocolError as exc:
            self._fail(exchange, PusherConnectionError(f"request to {exchange.where()} failed: {exc}"))
            return
        if parsed is not None:
            self._complete(exchange, parsed.response, parsed.keep_alive)

    def _complete(self, exchange: _Exchange, response: Response, keep_alive: bool) -> None:
        self._release(exchange, keep_alive)
        try:
            result = exchange.read(response)
        except Exception as exc:
            exchange.future.set_exception(exc)
        else:
            exchange.future.set_result(result)

    def _broken(self, exchange: _Exchange, error: OSError) -> None:
        """The connection failed: send again on a fresh one if :func:`may_resend` allows."""
        if may_resend(exchange.reused, exchange.parser.started):
            self._drop_socket(exchange)
            try:  # a new parser comes with the next send
                self._connect_fresh(exchange)
            except Exception as exc:
                self._fail(exchange, as_pusher_error(exc, exchange.where()))
            return
        self._fail(
            exchange,
            PusherConnectionError(f"{exchange.where()} closed the connection without answering: {error}"),
        )

    def _fail(self, exchange: _Exchange, error: BaseException) -> None:
        self._release(exchange, keep_alive=False)
        exchange.future.set_exception(error)

    def _expire(self, now: float) -> None:
        self._next_expiry_check = now + EXPIRY_CHECK_SECONDS
        for exchange in [exchange for exchange in self._started if exchange.deadline <= now]:
            timeout = exchange.request.timeout
            if exchange.state is EXCHANGING:
                error = PusherTimeout(f"no answer from {exchange.where()} within {timeout} s")
            else:
                error = PusherTimeout(f"connecting to {exchange.where()} timed out ({timeout} s)")
            self._fail(exchange, error)
        if now >= self._next_queue_scan:  # requests still waiting for a connection
            self._next_queue_scan = now + WAKER_MAX_WAIT_SECONDS
            for waiting in self._waiting.values():
                for exchange in [exchange for exchange in waiting if exchange.deadline <= now]:
                    waiting.remove(exchange)
                    self._not_sent(exchange)

    @staticmethod
    def _not_sent(exchange: _Exchange) -> None:
        exchange.future.set_exception(not_sent_error(exchange.request, exchange.bridge.pool_timeout))

    @staticmethod
    def _take_turn(exchange: _Exchange) -> bool:
        """A waiting exchange's turn came: False if its pool timeout passed (it failed unsent),
        else True, its deadline now the whole timeout of its exchange."""
        now = time.monotonic()
        if exchange.deadline <= now:
            _LoopDriver._not_sent(exchange)
            return False
        exchange.deadline = now + exchange.request.timeout
        return True

    def _drop_socket(self, exchange: _Exchange) -> None:
        sock, exchange.sock = exchange.sock, None
        if sock is not None:
            self._unregister_and_close(sock)

    def _unregister_and_close(self, sock: socket.socket) -> None:
        self._poller.unregister(sock)
        try:  # noqa: SIM105 - for every request, cheaper than contextlib.suppress
            sock.close()
        except OSError:
            pass

    def _release(self, exchange: _Exchange, keep_alive: bool) -> None:
        """Free the exchange's slot (whatever happens) and its connection: straight to the
        bridge's next waiting request to the same host, back to the pool, or closed."""
        bridge, sock = exchange.bridge, exchange.sock
        exchange.sock = None
        self._started.discard(exchange)
        handed_over = False
        try:
            if sock is None:
                return
            waiting = self._waiting.get(bridge)
            while keep_alive and waiting and waiting[0].key == exchange.key:
                following = waiting.popleft()
                if not self._take_turn(following):
                    continue
                self._started.add(following)
                handed_over = True  # the slot goes with the connection
                self._send_on(following, sock, reused=True)  # re-registered for ``following``
                return
            if keep_alive:
                self._poller.unregister(sock)
                bridge.pool.checkin(exchange.key, sock)
            else:
                self._unregister_and_close(sock)
        finally:
            if not handed_over:
                self._in_flight[bridge] -= 1
                self._start_waiting(bridge)

    def _start_waiting(self, bridge: NdbBridge) -> None:
        """Start ``bridge``'s waiting requests while it has free slots. A start that fails at
        once frees its slot again (the same bridge's): the loop below takes it, rather than
        a call inside that start (thousands of waiting requests failing in a row would
        exhaust the stack)."""
        waiting = self._waiting.get(bridge)
        if not waiting or self._starting_waiting:
            return
        self._starting_waiting = True
        try:
            while waiting and self._in_flight[bridge] < bridge.max_connections:
                following = waiting.popleft()
                if self._take_turn(following):
                    self._in_flight[bridge] += 1
                    self._start(following)
        finally:
            self._starting_waiting = False


class ThreadedNdbBridge:
    """Run a blocking ``send`` on threads, resolving ``google.cloud.ndb`` futures through
    ``queue_rpc``. A request waits for a thread at most ``pool_timeout`` seconds (the
    request's timeout by default), then fails unsent; ``send`` gets its whole timeout."""

    def __init__(
        self,
        send: Callable[[Request], Response],
        max_workers: int = DEFAULT_MAX_WORKERS,
        pool_timeout: float | None = None,
    ):
        self._send = send
        self.pool_timeout = check_pool_timeout(pool_timeout)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pusherlib")
        self._unstarted = _Canceller()

    def submit(self, request: Request, read: Callable[[Response], T]) -> tasklets.Future:
        """Start ``request``; return an NDB future of ``read(response)``."""
        future = tasklets.Future(info=f"pusherlib {request.method} {request.target.split('?')[0]}")
        where = f"{request.host}:{request.port}"

        def resolve(done: ThreadFuture[Response]) -> None:
            if done.cancelled():  # no thread took it in time (or the bridge closed): not sent
                future.set_exception(not_sent_error(request, self.pool_timeout))
                return
            try:
                future.set_result(read(done.result()))
            except Exception as exc:
                future.set_exception(as_pusher_error(exc, where))

        try:
            work = self._executor.submit(self._send, request)
            self._unstarted.add(turn_deadline(request, self.pool_timeout, time.monotonic()), work)
            _eventloop.queue_rpc(work, resolve)
        except Exception as exc:  # e.g. closed: through the future too
            future.set_exception(as_pusher_error(exc, where))
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._unstarted.close()


class _Canceller:
    """Cancels thread-pool work that no thread has started by its deadline: one thread,
    started when first needed, waiting for the earliest deadline."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, ThreadFuture[Any]]] = []
        self._numbers = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, deadline: float, work: ThreadFuture[Any]) -> None:
        with self._changed:
            heapq.heappush(self._due, (deadline, next(self._numbers), work))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pusherlib-canceller", daemon=True)
                self._thread.start()
            elif self._due[0][2] is work:  # the earliest now: wake the thread for it
                self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._due.clear()
            self._changed.notify()

    def _run(self) -> None:
        due = self._due
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                while due and (due[0][0] <= now or due[0][2].done()):
                    heapq.heappop(due)[2].cancel()  # nothing if it started or ended
                self._changed.wait(due[0][0] - now if due else None)


class ThreadedNdbFutures(Transport):
    """Mix-in for a transport with only ``send``: its ``*_async`` methods return
    google-cloud-ndb futures, ``send`` running on a thread pool."""

    _ndb_bridge: ThreadedNdbBridge | None = None

    def request_async(self, request: Request, read: Callable[[Response], T]) -> Any:
        if self._ndb_bridge is None:
            self._ndb_bridge = ThreadedNdbBridge(self.send)
        return self._ndb_bridge.submit(request, read)

    def close(self) -> None:
        if self._ndb_bridge is not None:
            self._ndb_bridge.close()
            self._ndb_bridge = None
        super().close()
