"""asyncio: ``await pusher.trigger_async(...)`` on the running event loop, without threads.

A small HTTP/1.1 client on ``asyncio.Protocol`` (asyncio's own loop or uvloop): requests
are written by :func:`~.http11.encode_request` and answers read into
:class:`~.http11.ResponseParser` as their bytes arrive. Connections follow the policy of
:mod:`.connections`: idle keep-alive ones are reused, newest first, for ``keep_alive``
seconds; a request is sent again at most once, on a fresh connection, and only when a
reused one failed before answering. A request waits for a free connection at most the pool
timeout (then fails unsent: :class:`~pusherlib.errors.PusherNotSent`); once it has one, its
``timeout`` is a deadline for the exchange: name lookup, connect, TLS, every byte of the answer.
A cancelled ``await`` closes the connection it used. There is no proxy support: behind an
HTTP proxy, use :class:`~.http.HTTPTransport`. One transport serves one event loop; close
it with ``await transport.aclose()`` before the loop ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import certifi

from ..errors import PusherConnectionError, PusherTypeError, PusherValueError
from .base import Request, Response, Transport
from .connections import (
    DEFAULT_KEEP_ALIVE_SECONDS,
    DEFAULT_MAX_IDLE_PER_HOST,
    HostKey,
    NoAnswer,
    check_pool_timeout,
    connect_error,
    exchange_error,
    may_resend,
    not_sent_error,
    remaining,
    turn_deadline,
    where,
)
from .http11 import MAX_BODY_BYTES, ParsedResponse, ProtocolError, ResponseParser, encode_request

T = TypeVar("T")

CLOSE_WAIT_SECONDS = 1.0  # how long aclose() waits for closed connections to be gone


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; while ``parser`` is set, ``answer`` awaits what it reads."""

    __slots__ = ("answer", "gone", "idle_since", "lost", "parser", "transport")

    transport: asyncio.Transport
    answer: asyncio.Future[ParsedResponse]

    def __init__(self) -> None:
        self.parser: ResponseParser | None = None
        self.idle_since = 0.0
        self.lost = False  # connection_lost was called
        self.gone: asyncio.Future[None] | None = None  # what aclose() waits for

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

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


class _Host:
    """A host key's connections: idle ones (newest last), requests in flight, and the
    futures of requests waiting for a free connection."""

    __slots__ = ("idle", "in_flight", "waiting")

    def __init__(self) -> None:
        self.idle: deque[_Connection] = deque()
        self.in_flight = 0
        self.waiting: deque[asyncio.Future[None]] = deque()


class AsyncioTransport(Transport):
    """Pooled keep-alive HTTP(S) on the running asyncio loop; serves the ``*_async`` methods.

    At most ``max_connections`` requests per host are in flight; the others wait their turn
    at most ``pool_timeout`` seconds (the request's timeout by default: see
    :mod:`.connections`); ``max_idle_per_host`` idle connections are kept per host, each for
    at most ``keep_alive`` seconds; ``ssl_context`` replaces the default one (certifi's CA
    bundle, hostnames checked); answers are read up to ``max_response_bytes``.
    """

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
        self._hosts: dict[HostKey, _Host] = {}

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
        key = (request.scheme, request.host, request.port)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host()
        try:
            data = encode_request(request)
        except UnicodeEncodeError as exc:  # a header value that is not Latin-1
            raise PusherConnectionError(f"request to {where(request)} cannot be written: {exc}") from exc
        if host.in_flight < self.max_connections:
            host.in_flight += 1
            deadline = start + request.timeout
        else:
            await self._wait_turn(loop, host, request, turn_deadline(request, self.pool_timeout, start))
            deadline = time.monotonic() + request.timeout  # the exchange has its whole timeout
        try:
            parsed = await self._exchange(loop, host, request, data, deadline)
        finally:
            self._release(host)
        return read(parsed.response)

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, host: _Host, request: Request, data: bytes, deadline: float
    ) -> ParsedResponse:
        """Write ``data`` and read the answer (sent again once if a reused connection
        ended before answering)."""
        conn = self._checkout(host)
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
            if (
                parsed.keep_alive
                and len(host.idle) < self.max_idle_per_host
                and not conn.transport.is_closing()
            ):
                conn.idle_since = time.monotonic()
                host.idle.append(conn)
            else:
                conn.transport.abort()
            return parsed

    def _checkout(self, host: _Host) -> _Connection | None:
        """The newest idle connection that is still open and fresh enough, or None."""
        idle = host.idle
        if not idle:
            return None
        oldest = time.monotonic() - self.keep_alive
        while idle:
            conn = idle.pop()
            if conn.idle_since > oldest and not conn.transport.is_closing():
                return conn
            conn.transport.abort()
        return None

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, request: Request, deadline: float
    ) -> _Connection:
        """A fresh connection (name lookup, connect and TLS handshake within the deadline)."""
        host = request.ascii_host
        tls = self.tls_context() if request.scheme == "https" else None
        try:
            left = remaining(deadline)
            connecting = loop.create_connection(
                _Connection, host, request.port, ssl=tls, server_hostname=host if tls else None
            )
            _, conn = await asyncio.wait_for(connecting, left)
        except asyncio.TimeoutError as exc:  # not TimeoutError before Python 3.11
            raise connect_error(request, TimeoutError()) from exc
        except (OSError, ValueError) as exc:  # TimeoutError included
            raise connect_error(request, exc) from exc
        return conn  # asyncio and uvloop set TCP_NODELAY

    # -- turns ---------------------------------------------------------------------------

    async def _wait_turn(
        self, loop: asyncio.AbstractEventLoop, host: _Host, request: Request, deadline: float
    ) -> None:
        """Wait until a request in flight to this host hands its turn over, at the latest
        by ``deadline`` (else :class:`~pusherlib.errors.PusherNotSent`)."""
        turn: asyncio.Future[None] = loop.create_future()
        host.waiting.append(turn)
        timer = loop.call_later(max(0.0, deadline - time.monotonic()), _expire, turn)
        try:
            await turn
        except TimeoutError as exc:
            raise not_sent_error(request, self.pool_timeout) from exc
        except BaseException:  # cancelled, maybe once its turn had come
            if turn.done() and not turn.cancelled():
                self._release(host)
            raise
        finally:
            timer.cancel()

    def _release(self, host: _Host) -> None:
        """Hand the turn to the next waiting request, or give it back."""
        waiting = host.waiting
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        host.in_flight -= 1

    # -- closing -------------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start afresh on ``loop`` (connections of another loop cannot be used here)."""
        self.close()
        self._loop, self._hosts = loop, {}

    def _close_idle(self) -> list[_Connection]:
        closed = []
        for host in self._hosts.values():
            while host.idle:
                conn = host.idle.pop()
                conn.transport.abort()
                closed.append(conn)
        return closed

    def close(self) -> None:
        """Close the idle connections (they are gone once the loop has run)."""
        with contextlib.suppress(RuntimeError):  # their loop is closed
            self._close_idle()

    async def aclose(self) -> None:
        """Close the idle connections and wait until they are gone."""
        loop = asyncio.get_running_loop()
        gone = []
        for conn in self._close_idle():
            if not conn.lost:
                conn.gone = loop.create_future()
                gone.append(conn.gone)
        if gone:
            await asyncio.wait(gone, timeout=CLOSE_WAIT_SECONDS)
