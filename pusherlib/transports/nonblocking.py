"""One request on a non-blocking socket, driven by readiness events (the NDB driver's I/O):
connect, TLS, write and read, each step run when the poller says the socket is ready."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from typing import TYPE_CHECKING, Any

from ..errors import PusherConnectionError
from .base import Request, Response
from .connections import Address, close_quietly, numeric_addresses, resolve_async
from .core import (
    HostKey,
    as_pusher_error,
    connect_error,
    exchange_error,
    host_key,
    may_resend,
    remaining,
    where,
)
from .http11 import ProtocolError, ResponseParser
from .pollers import new_poller

if TYPE_CHECKING:
    from google.cloud.ndb import tasklets

    from .ndb import NdbBridge

RECEIVE_BYTES = 65536
CONNECT_PENDING = (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)
SOCK_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)  # non-blocking from the start, where possible

# What an exchange waits for.
RESOLVING, CONNECTING, HANDSHAKING, EXCHANGING = "resolving", "connecting", "handshaking", "exchanging"


class Exchange:
    """One request in flight: its connection, what to send, what came back so far (kept small:
    thousands may wait at once)."""

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
        key = host_key(request)
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
        return where(self.request)


class Exchanges:
    """Exchanges in flight on non-blocking sockets, registered with one poller."""

    def __init__(self) -> None:
        self._poller = poller = new_poller()
        self._read, self._write, self._readable = poller.READ, poller.WRITE, ~poller.WRITE
        self._started: set[Exchange] = set()
        self._wake_reader, self._wake_writer = socket.socketpair()  # a name lookup finished
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        poller.register(self._wake_reader, self._read, None)

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
        """Make the poller return (from any thread): a name lookup finished."""
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"!")

    def _close_io(self) -> None:
        """Close the poller and the wake pipe."""
        self._poller.close()
        close_quietly(self._wake_reader)
        close_quietly(self._wake_writer)

    def _ready(self, exchange: Exchange, events: int) -> None:
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

    def _start(self, exchange: Exchange) -> None:
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

    def _connect_fresh(self, exchange: Exchange) -> None:
        request = exchange.request
        addresses = numeric_addresses(request.ascii_host, request.port)
        if addresses is not None:
            exchange.addresses = addresses
            self._connect_next(exchange)
            return
        exchange.state = RESOLVING
        exchange.lookup = resolve_async(request.ascii_host, request.port)
        exchange.lookup.add_done_callback(self._wake)

    def _resolved(self, exchange: Exchange) -> None:
        assert exchange.lookup is not None
        try:
            exchange.addresses = exchange.lookup.result()
        except OSError as exc:
            self._fail(exchange, connect_error(exchange.request, exc))
            return
        exchange.lookup = None
        self._connect_next(exchange)

    def _connect_next(self, exchange: Exchange) -> None:
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

    def _connected(self, exchange: Exchange) -> None:
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
                self._fail(exchange, connect_error(exchange.request, exc))
                return
            exchange.state = HANDSHAKING
            self._poller.register(exchange.sock, self._write, exchange)
            self._handshake(exchange)
        else:
            self._send_on(exchange, sock, reused=False)

    def _handshake(self, exchange: Exchange) -> None:
        sock = exchange.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._poller.modify(sock, self._read, exchange)
        except ssl.SSLWantWriteError:
            self._poller.modify(sock, self._write, exchange)
        except (OSError, ValueError) as exc:
            self._fail(exchange, connect_error(exchange.request, exc))
        else:
            self._send_on(exchange, sock, reused=False)

    def _next_address_or_fail(self, exchange: Exchange, error: OSError) -> None:
        if exchange.addresses:
            self._connect_next(exchange)
        else:
            self._fail(exchange, connect_error(exchange.request, error))

    # -- one exchange -----------------------------------------------------------------

    def _send_on(
        self, exchange: Exchange, sock: socket.socket, reused: bool, registered: bool = True
    ) -> None:
        """Write ``exchange`` on ``sock``, then wait for what it needs next (``registered``:
        whether ``sock`` is registered with this driver already)."""
        exchange.sock, exchange.reused, exchange.state = sock, reused, EXCHANGING
        exchange.sent = 0
        exchange.parser = exchange.bridge.new_parser(exchange.request)
        self._send_more(exchange, registered)

    def _send_more(self, exchange: Exchange, registered: bool = True) -> None:
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

    def _events_after_send(self, exchange: Exchange) -> int:
        """Wait for the answer, and for room to write the rest if some is left."""
        if exchange.sent >= len(exchange.data):
            return self._read
        return self._read | self._write

    def _receive(self, exchange: Exchange) -> None:
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
            self._fail(exchange, exchange_error(exchange.request, exc))
            return
        if parsed is not None:
            self._complete(exchange, parsed.response, parsed.keep_alive)

    def _complete(self, exchange: Exchange, response: Response, keep_alive: bool) -> None:
        self._release(exchange, keep_alive)
        try:
            result = exchange.read(response)
        except Exception as exc:
            exchange.future.set_exception(exc)
        else:
            exchange.future.set_result(result)

    def _broken(self, exchange: Exchange, error: OSError) -> None:
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

    def _fail(self, exchange: Exchange, error: BaseException) -> None:
        self._release(exchange, keep_alive=False)
        exchange.future.set_exception(error)

    def _drop_socket(self, exchange: Exchange) -> None:
        sock, exchange.sock = exchange.sock, None
        if sock is not None:
            self._unregister_and_close(sock)

    def _unregister_and_close(self, sock: socket.socket) -> None:
        self._poller.unregister(sock)
        try:  # noqa: SIM105 - for every request, cheaper than contextlib.suppress
            sock.close()
        except OSError:
            pass

    def _release(self, exchange: Exchange, keep_alive: bool) -> None:
        """Free the exchange's turn and its connection (the driver's: :mod:`.ndb_loop`)."""
        raise NotImplementedError
