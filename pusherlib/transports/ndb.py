"""google-cloud-ndb futures for pusherlib's requests.

Inside a ``google.cloud.ndb`` context the ``*_async`` methods return an NDB future: a
tasklet can ``yield`` it, anyone can read it with ``get_result()``, and pusherlib's errors
arrive through it. Many requests in flight run concurrently.

:class:`NdbBridge` serves the default :class:`~pusherlib.transports.http.HTTPTransport`
with no thread at all. A request is written at once on a non-blocking keep-alive
connection (or one being opened: TCP connect and TLS handshake do not block either), and
one idle callback on the NDB event loop waits for every connection in flight with a single
``select``. The loop runs that callback whenever its thread waits (``get_result()``, a
tasklet's ``yield``, the end of the context), so answers are parsed and futures resolved
in the caller's thread, with no handoff between threads. Connections are kept in the
bridge's own pool; a pooled connection that the server closed is replaced and the request
sent again, once, before any answer was read from it.

:class:`ThreadedNdbBridge` serves any other transport, and HTTPTransport through a proxy:
its blocking ``send`` runs on a thread pool, and the result reaches the event loop through
``queue_rpc``.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import ssl
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
from .http import HTTPTransport
from .http11 import ProtocolError, ResponseParser

T = TypeVar("T")

DEFAULT_MAX_WORKERS = 16
RECEIVE_BYTES = 65536
# While gRPC calls of the same event loop are pending too, look at both this often.
SHARED_WAIT_SECONDS = 0.001
CONNECT_PENDING = (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)

HostKey = tuple[str, str, int]


def bridge_for(transport: Transport) -> NdbBridge | ThreadedNdbBridge:
    """The bridge for ``transport``: in the loop's thread for a direct HTTPTransport,
    threads otherwise."""
    if (
        isinstance(transport, HTTPTransport)
        and type(transport).send is HTTPTransport.send
        and transport.proxy is None
    ):
        return NdbBridge(transport)
    return ThreadedNdbBridge(transport.send)


class NdbBridge:
    """Requests of one :class:`HTTPTransport`, sent and read in the NDB event loop's thread.

    At most ``max_connections`` requests per host are in flight from one event loop (by
    default the transport's ``max_idle_per_host``, at least one); the others wait for a
    connection.
    """

    def __init__(self, transport: HTTPTransport, max_connections: int | None = None):
        self._transport = transport
        self.max_connections = max_connections or max(1, transport.max_idle_per_host)
        self._idle: dict[HostKey, deque[socket.socket]] = {}

    def submit(self, request: Request, read: Callable[[Response], T]) -> tasklets.Future:
        """Send ``request`` now; return an NDB future of ``read(response)``."""
        future = tasklets.Future(info=f"pusherlib {request.method} {request.target.split('?', 1)[0]}")
        exchange = _Exchange(self, request, self._transport.encode(request), read, future)
        _loop_driver().add(exchange)
        return future

    def checkout(self, key: HostKey) -> socket.socket | None:
        """A pooled connection to ``key``, if there is one."""
        idle = self._idle.get(key)
        try:
            return idle.pop() if idle else None
        except IndexError:  # another thread took the last one
            return None

    def checkin(self, key: HostKey, sock: socket.socket) -> None:
        """Keep ``sock`` for the next request to ``key``, unless the pool is full."""
        idle = self._idle.setdefault(key, deque())
        if len(idle) < self.max_connections:
            idle.append(sock)
        else:
            sock.close()

    def wrap_tls(self, sock: socket.socket, host: str) -> ssl.SSLSocket:
        """``sock`` under TLS (the transport's context), its handshake not done yet."""
        return self._transport.tls_context().wrap_socket(
            sock, server_hostname=host, do_handshake_on_connect=False
        )

    def close(self) -> None:
        """Close the pooled connections (requests in flight finish on theirs)."""
        pools, self._idle = list(self._idle.values()), {}
        for idle in pools:
            while idle:
                idle.pop().close()


# What an exchange waits for.
CONNECTING, HANDSHAKING, EXCHANGING = "connecting", "handshaking", "exchanging"


class _Exchange:
    """One request in flight: its connection, what to send, what came back so far."""

    __slots__ = (
        "addresses",
        "bridge",
        "data",
        "deadline",
        "future",
        "key",
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
    ):
        self.bridge, self.request, self.data, self.read, self.future = bridge, request, data, read, future
        self.key: HostKey = (request.scheme, request.host, request.port)
        self.sock: socket.socket | None = None
        self.state = EXCHANGING
        self.addresses: list[Any] = []
        self.reused = False
        self.sent = 0
        self.parser: ResponseParser  # from the moment it is sent
        self.deadline = 0.0

    def where(self) -> str:
        return f"{self.request.host}:{self.request.port}"


_drivers: weakref.WeakKeyDictionary[Any, _LoopDriver] = weakref.WeakKeyDictionary()


def _loop_driver() -> _LoopDriver:
    """The driver of the current NDB event loop, started (with its idle callback) if needed."""
    loop = _eventloop.get_event_loop()
    driver = _drivers.get(loop)
    if driver is None:
        driver = _drivers[loop] = _LoopDriver()
        loop.add_idle(driver.idle, loop)
    return driver


class _LoopDriver:
    """The requests in flight from one NDB event loop, and the idle callback that reads them."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._in_flight: dict[NdbBridge, int] = {}
        self._waiting: dict[NdbBridge, deque[_Exchange]] = {}

    def add(self, exchange: _Exchange) -> None:
        """Send ``exchange`` now, or as soon as one of its bridge's connections is free."""
        bridge = exchange.bridge
        if self._in_flight.get(bridge, 0) < bridge.max_connections:
            self._start(exchange)
        else:
            self._waiting.setdefault(bridge, deque()).append(exchange)

    # -- the idle callback ------------------------------------------------------------

    def idle(self, loop: Any) -> bool | None:
        """Move what is ready; wait for it when the loop has nothing else to do.

        Returns None (leave the loop) when nothing is in flight, False to let the loop run
        its due timers and gRPC callbacks first, True otherwise.
        """
        keys = self._selector.get_map()
        if not keys:
            del _drivers[loop]
            self._selector.close()
            return None
        if not loop.rpc_results.empty() or (loop.queue and loop.queue[0].when <= time.time()):
            return False
        earliest = min(key.data.deadline for key in keys.values())
        timeout = max(0.0, earliest - time.monotonic())
        if loop.rpcs:
            timeout = min(timeout, SHARED_WAIT_SECONDS)
        if loop.queue:
            timeout = min(timeout, max(0.0, loop.queue[0].when - time.time()))
        try:
            for key, events in self._selector.select(timeout):
                self._ready(key.data, events)
            now = time.monotonic()
            if earliest <= now:
                self._expire(now)
        except BaseException:
            loop.add_idle(self.idle, loop)  # a done-callback raised: the loop dropped this callback
            raise
        return True

    def _ready(self, exchange: _Exchange, events: int) -> None:
        if exchange.state is CONNECTING:
            self._connected(exchange)
        elif exchange.state is HANDSHAKING:
            self._handshake(exchange)
        elif events & selectors.EVENT_READ:
            self._receive(exchange)
        else:
            self._send_more(exchange)

    # -- connecting -------------------------------------------------------------------

    def _start(self, exchange: _Exchange) -> None:
        """Send on a pooled connection, or start opening one."""
        self._in_flight[exchange.bridge] = self._in_flight.get(exchange.bridge, 0) + 1
        exchange.deadline = time.monotonic() + exchange.request.timeout
        sock = exchange.bridge.checkout(exchange.key)
        if sock is not None:
            self._selector.register(sock, selectors.EVENT_READ, exchange)
            self._send_on(exchange, sock, reused=True)
            return
        request = exchange.request
        try:
            exchange.addresses = socket.getaddrinfo(request.host, request.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            self._cannot_connect(exchange, exc)
            return
        self._connect_next(exchange)

    def _connect_next(self, exchange: _Exchange) -> None:
        """Start connecting to the next address of the host (a non-blocking connect)."""
        family, kind, proto, _, address = exchange.addresses.pop(0)
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(address)
        if code not in CONNECT_PENDING:
            sock.close()
            self._next_address_or_fail(exchange, OSError(code, os.strerror(code)))
            return
        exchange.sock, exchange.state, exchange.reused = sock, CONNECTING, False
        self._selector.register(sock, selectors.EVENT_WRITE, exchange)

    def _connected(self, exchange: _Exchange) -> None:
        sock = exchange.sock
        assert sock is not None
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._selector.unregister(sock)
            sock.close()
            exchange.sock = None
            self._next_address_or_fail(exchange, OSError(code, os.strerror(code)))
        elif exchange.request.scheme == "https":
            self._selector.unregister(sock)
            try:
                exchange.sock = exchange.bridge.wrap_tls(sock, exchange.request.host)
            except (OSError, ValueError) as exc:
                sock.close()
                exchange.sock = None
                self._cannot_connect(exchange, exc)
                return
            exchange.state = HANDSHAKING
            self._selector.register(exchange.sock, selectors.EVENT_WRITE, exchange)
            self._handshake(exchange)
        else:
            self._send_on(exchange, sock, reused=False)

    def _handshake(self, exchange: _Exchange) -> None:
        sock = exchange.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._selector.modify(sock, selectors.EVENT_READ, exchange)
        except ssl.SSLWantWriteError:
            self._selector.modify(sock, selectors.EVENT_WRITE, exchange)
        except (OSError, ValueError) as exc:
            self._fail(exchange, PusherConnectionError(f"cannot connect to {exchange.where()}: {exc}"))
        else:
            self._send_on(exchange, sock, reused=False)

    def _next_address_or_fail(self, exchange: _Exchange, error: OSError) -> None:
        if exchange.addresses:
            self._connect_next(exchange)
        else:
            self._cannot_connect(exchange, error)

    def _cannot_connect(self, exchange: _Exchange, error: Exception) -> None:
        """Opening the connection failed before the socket was registered."""
        self._in_flight[exchange.bridge] -= 1
        exchange.future.set_exception(PusherConnectionError(f"cannot connect to {exchange.where()}: {error}"))
        self._start_waiting(exchange.bridge)

    # -- one exchange -----------------------------------------------------------------

    def _send_on(self, exchange: _Exchange, sock: socket.socket, reused: bool) -> None:
        """Write ``exchange`` on ``sock``, already registered with this driver."""
        exchange.sock, exchange.reused, exchange.state = sock, reused, EXCHANGING
        exchange.sent = 0
        exchange.parser = ResponseParser(exchange.request.method == "HEAD")
        self._send_more(exchange)

    def _send_more(self, exchange: _Exchange) -> None:
        sock = exchange.sock
        assert sock is not None
        try:
            exchange.sent += sock.send(exchange.data[exchange.sent :])
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError as exc:
            self._broken(exchange, exc)
            return
        done = exchange.sent >= len(exchange.data)
        events = selectors.EVENT_READ if done else selectors.EVENT_READ | selectors.EVENT_WRITE
        self._selector.modify(sock, events, exchange)

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
        """The connection failed: retry on another if it was pooled and had not answered."""
        if exchange.reused and not exchange.parser.started:
            self._release(exchange, keep_alive=False, start_next=False)
            self._start(exchange)
            return
        self._fail(
            exchange,
            PusherConnectionError(f"{exchange.where()} closed the connection without answering: {error}"),
        )

    def _fail(self, exchange: _Exchange, error: PusherError) -> None:
        self._release(exchange, keep_alive=False)
        exchange.future.set_exception(error)

    def _expire(self, now: float) -> None:
        late = [key.data for key in self._selector.get_map().values() if key.data.deadline <= now]
        for exchange in late:
            if exchange.sock is None:  # finished by an earlier failure's callbacks
                continue
            timeout = exchange.request.timeout
            if exchange.state is EXCHANGING:
                error = PusherTimeout(f"no answer from {exchange.where()} within {timeout} s")
            else:
                error = PusherTimeout(f"connecting to {exchange.where()} timed out ({timeout} s)")
            self._fail(exchange, error)

    def _release(self, exchange: _Exchange, keep_alive: bool, start_next: bool = True) -> None:
        """Free the exchange's connection: straight to the bridge's next waiting request
        (same host), back to the pool, or closed."""
        bridge, sock = exchange.bridge, exchange.sock
        assert sock is not None
        exchange.sock = None
        waiting = self._waiting.get(bridge) if start_next else None
        if keep_alive and waiting and waiting[0].key == exchange.key:
            following = waiting.popleft()
            following.deadline = time.monotonic() + following.request.timeout
            self._send_on(following, sock, reused=True)
            return
        self._selector.unregister(sock)
        self._in_flight[bridge] -= 1
        if keep_alive:
            bridge.checkin(exchange.key, sock)
        else:
            sock.close()
        if start_next:
            self._start_waiting(bridge)

    def _start_waiting(self, bridge: NdbBridge) -> None:
        waiting = self._waiting.get(bridge)
        while waiting and self._in_flight[bridge] < bridge.max_connections:
            self._start(waiting.popleft())


class ThreadedNdbBridge:
    """Run a blocking ``send`` on threads, resolving ``google.cloud.ndb`` futures."""

    def __init__(self, send: Callable[[Request], Response], max_workers: int = DEFAULT_MAX_WORKERS):
        self._send = send
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pusherlib")

    def submit(self, request: Request, read: Callable[[Response], T]) -> tasklets.Future:
        """Start ``request``; return an NDB future of ``read(response)``."""
        future = tasklets.Future(info=f"pusherlib {request.method} {request.target.split('?')[0]}")
        thread_future = self._executor.submit(self._send, request)

        def resolve(done: ThreadFuture[Response]) -> None:
            try:
                future.set_result(read(done.result()))
            except Exception as exc:
                future.set_exception(exc)

        _eventloop.queue_rpc(thread_future, resolve)
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
