"""The asyncio driver: ``await pusher.trigger_async(...)`` on the running loop (or uvloop), no
threads; bytes through :mod:`.http11`, pool and rules from :mod:`.core`. No proxy support."""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

import certifi

from ..errors import PusherConnectionError, PusherTypeError, PusherValueError
from .base import Request, Response, Transport
from .core import (
    DEFAULT_KEEP_ALIVE_SECONDS,
    DEFAULT_MAX_IDLE_PER_HOST,
    LOOPBACK_HANDSHAKE_SECONDS,
    HostKey,
    IdleConnections,
    NoAnswer,
    Turns,
    check_pool_timeout,
    connect_error,
    exchange_error,
    host_key,
    is_loopback,
    may_resend,
    not_sent_error,
    remaining,
    tls_error,
    turn_deadline,
    where,
)
from .http11 import MAX_BODY_BYTES, ParsedResponse, ProtocolError, ResponseParser, encode_request

T = TypeVar("T")

CLOSE_WAIT_SECONDS = 1.0  # how long aclose() waits for closed connections to be gone


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; while ``parser`` is set, ``answer`` awaits what it reads."""

    __slots__ = ("answer", "gone", "lost", "parser", "transport")

    transport: asyncio.Transport
    answer: asyncio.Future[ParsedResponse]

    def __init__(self) -> None:
        self.parser: ResponseParser | None = None
        self.lost = False  # connection_lost was called
        self.gone: asyncio.Future[None] | None = None  # what aclose() waits for

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def is_open(self) -> bool:
        return not self.transport.is_closing()

    def abort(self) -> None:
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # written unasked: not reusable
            self.transport.abort()
        else:
            self._read(data)

    def eof_received(self) -> bool:
        if self.parser is not None:
            self._read(b"")  # the end of a body without a length, or too early
        return False  # close the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        parser = self.parser
        if parser is not None:
            if exc is None:
                self._read(b"")
            else:
                self._fail(exc if parser.started else NoAnswer(f"connection ended before an answer: {exc}"))
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)

    def _read(self, data: bytes) -> None:
        """Feed the parser (``b""``: the connection ended); complete the answer once read."""
        parser = self.parser
        assert parser is not None
        try:
            parsed = parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc if parser.started else NoAnswer(str(exc)))
            return
        if parsed is not None:
            self.parser = None
            if not self.answer.done():
                self.answer.set_result(parsed)

    def _fail(self, error: BaseException) -> None:
        self.parser = None
        self.transport.abort()
        if not self.answer.done():
            self.answer.set_exception(error)


def _expire(waiter: asyncio.Future[Any]) -> None:
    """The deadline passed: fail ``waiter`` (an answer, or a turn) unless it is done."""
    if not waiter.done():
        waiter.set_exception(TimeoutError("deadline passed"))


class AsyncioTransport(Transport):
    """Pooled keep-alive HTTP(S) on the running loop, for the ``*_async`` methods: at most
    ``max_connections`` per host in flight, the others wait at most ``pool_timeout``. One transport
    per loop: ``await transport.aclose()`` before it ends. Options: docs/pusherlib.md, 'Transports'."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = DEFAULT_MAX_IDLE_PER_HOST,
        max_idle_per_host: int = DEFAULT_MAX_IDLE_PER_HOST,
        keep_alive: float = DEFAULT_KEEP_ALIVE_SECONDS,
        max_response_bytes: int = MAX_BODY_BYTES,
        pool_timeout: float | None = None,
    ):
        if not 0 <= keep_alive < math.inf:
            raise PusherValueError(f"keep_alive must be a finite number of seconds, got {keep_alive!r}")
        for name, value, least in (
            ("max_connections", max_connections, 1),
            ("max_idle_per_host", max_idle_per_host, 0),
            ("max_response_bytes", max_response_bytes, 1),
        ):
            if not isinstance(value, int) or value < least:
                raise PusherValueError(f"{name} must be an int of at least {least}, got {value!r}")
        self.max_connections = max_connections
        self.max_idle_per_host = max_idle_per_host
        self.keep_alive = keep_alive
        self.max_response_bytes = max_response_bytes
        self.pool_timeout = check_pool_timeout(pool_timeout)
        self._ssl_context = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turns: Turns[asyncio.Future[None]] = Turns(max_connections)
        self._idle = self._new_idle()

    def send(self, request: Request) -> Response:
        raise PusherTypeError("AsyncioTransport serves the *_async methods: await pusher.trigger_async(...)")

    def tls_context(self) -> ssl.SSLContext:
        """The context HTTPS connections are made with."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=certifi.where())
        return self._ssl_context

    # -- sending ---------------------------------------------------------------------

    async def request_async(self, request: Request, read: Callable[[Response], T]) -> T:
        """Send ``request`` on the running loop; return ``read(response)``."""
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        key = host_key(request)
        try:
            data = encode_request(request)
        except UnicodeEncodeError as exc:  # a header value that is not Latin-1
            raise PusherConnectionError(f"request to {where(request)} cannot be written: {exc}") from exc
        if self._turns.take(key):
            deadline = start + request.timeout
        else:
            await self._wait_turn(loop, key, request, turn_deadline(request, self.pool_timeout, start))
            deadline = time.monotonic() + request.timeout  # the exchange has its whole timeout
        try:
            parsed = await self._exchange(loop, key, request, data, deadline)
        finally:
            self._release(key)
        return read(parsed.response)

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, key: HostKey, request: Request, data: bytes, deadline: float
    ) -> ParsedResponse:
        """Write ``data`` and read the answer (sent again once if a reused connection
        ended before answering)."""
        conn = self._idle.checkout(key)
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._connect(loop, request, deadline)
            try:
                answer = conn.answer = loop.create_future()
                conn.parser = ResponseParser(request.method == "HEAD", max_body_bytes=self.max_response_bytes)
                conn.transport.write(data)
                timer = loop.call_later(remaining(deadline), _expire, answer)
                try:
                    parsed = await answer
                finally:
                    timer.cancel()
            except (OSError, ProtocolError) as exc:  # NoAnswer and TimeoutError included
                conn.transport.abort()
                if isinstance(exc, NoAnswer) and may_resend(reused, answer_started=False):
                    conn, reused = None, False
                    continue
                raise exchange_error(request, exc) from exc
            except BaseException:  # cancelled: the answer may still come, on a connection nobody reads
                conn.parser = None
                conn.transport.abort()
                raise
            if parsed.keep_alive and not conn.transport.is_closing():
                self._idle.checkin(key, conn)
            else:
                conn.transport.abort()
            return parsed

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, request: Request, deadline: float
    ) -> _Connection:
        """A fresh connection (name lookup, connect and TLS handshake within the deadline)."""
        host = request.ascii_host
        tls = self.tls_context() if request.scheme == "https" else None
        options: dict[str, Any] = {}
        if tls is not None:
            options = {"ssl": tls, "server_hostname": host}
            if is_loopback(host):  # a plain-HTTP server here would never answer the hello
                options["ssl_handshake_timeout"] = LOOPBACK_HANDSHAKE_SECONDS
        try:
            left = remaining(deadline)
            connecting = loop.create_connection(_Connection, host, request.port, **options)
            _, conn = await asyncio.wait_for(connecting, left)
        except asyncio.TimeoutError as exc:  # not TimeoutError before Python 3.11
            raise connect_error(request, TimeoutError()) from exc
        except ConnectionAbortedError as exc:  # the loopback handshake took too long
            raise tls_error(request, TimeoutError()) from exc
        except ssl.SSLError as exc:
            raise tls_error(request, exc) from exc
        except (OSError, ValueError) as exc:  # TimeoutError included
            raise connect_error(request, exc) from exc
        return conn  # asyncio and uvloop set TCP_NODELAY

    # -- turns ---------------------------------------------------------------------------

    async def _wait_turn(
        self, loop: asyncio.AbstractEventLoop, key: HostKey, request: Request, deadline: float
    ) -> None:
        """Wait until a request in flight to this host hands its turn over, at the latest
        by ``deadline`` (else :class:`~pusherlib.errors.PusherNotSent`)."""
        turn: asyncio.Future[None] = loop.create_future()
        self._turns.wait(key, turn)
        timer = loop.call_later(max(0.0, deadline - time.monotonic()), _expire, turn)
        try:
            await turn
        except TimeoutError as exc:
            raise not_sent_error(request, self.pool_timeout) from exc
        except BaseException:  # cancelled, maybe once its turn had come
            if turn.done() and not turn.cancelled():
                self._release(key)
            raise
        finally:
            timer.cancel()

    def _release(self, key: HostKey) -> None:
        """Hand the turn to the next waiting request, or give it back."""
        while (turn := self._turns.next_waiter(key)) is not None:
            if not turn.done():
                turn.set_result(None)
                return
        self._turns.free(key)

    # -- closing -------------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start afresh on ``loop`` (connections of another loop cannot be used here)."""
        self.close()
        self._loop, self._turns, self._idle = loop, Turns(self.max_connections), self._new_idle()

    def _new_idle(self) -> IdleConnections[_Connection]:
        return IdleConnections(
            self.max_idle_per_host, self.keep_alive, _Connection.is_open, _Connection.abort
        )

    def close(self) -> None:
        """Close the idle connections (they are gone once the loop has run)."""
        with contextlib.suppress(RuntimeError):  # their loop is closed
            self._idle.close()

    async def aclose(self) -> None:
        """Close the idle connections and wait until they are gone."""
        loop = asyncio.get_running_loop()
        gone = []
        for conn in self._idle.close():
            if not conn.lost:
                conn.gone = loop.create_future()
                gone.append(conn.gone)
        if gone:
            await asyncio.wait(gone, timeout=CLOSE_WAIT_SECONDS)
