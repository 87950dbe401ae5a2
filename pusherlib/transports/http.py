"""The default transport: HTTP/1.1 over pooled keep-alive connections.

A deliberately small HTTP/1.1 client: requests are written in one ``sendall``, responses
read with ``recv`` into :class:`~.http11.ResponseParser`. Idle connections wait in a
per-host pool; one that the server closed while idle is replaced and the request sent
again, once, before any answer was read from it. HTTPS is verified against certifi's CA
bundle; an HTTP proxy is optional (``CONNECT`` tunnels for HTTPS).
"""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import certifi

from ..errors import PusherConnectionError, PusherTimeout, PusherValueError
from .base import Request, Response, Transport
from .http11 import ParsedResponse, ProtocolError, ResponseParser, encode_connect, encode_request

RECEIVE_BYTES = 65536
DEFAULT_MAX_IDLE_PER_HOST = 16

HostKey = tuple[str, str, int]


class _StaleConnection(ConnectionError):
    """A pooled connection was closed by the server before it answered."""

    def __init__(self) -> None:
        super().__init__("closed the connection without answering")


class Connection:
    """One socket (to the server or a proxy) and the exchanges of requests on it."""

    __slots__ = ("sock", "timeout")

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.timeout = timeout

    def is_dropped(self) -> bool:
        """True when the peer closed (or wrote unasked): the connection is not reusable."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def exchange(self, data: bytes, timeout: float, head_only: bool = False) -> ParsedResponse:
        """Write one request; read its response."""
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _StaleConnection() from exc
        return self.read_response(head_only)

    def read_response(self, head_only: bool) -> ParsedResponse:
        """Read one response (``_StaleConnection`` when the server closed before any byte)."""
        parser = ResponseParser(head_only)
        recv = self.sock.recv
        while True:
            try:
                data = recv(RECEIVE_BYTES)
            except (BrokenPipeError, ConnectionResetError) as exc:
                if parser.started:
                    raise
                raise _StaleConnection() from exc
            if not data and not parser.started:
                raise _StaleConnection()
            parsed = parser.feed(data)
            if parsed is not None:
                return parsed

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class HTTPTransport(Transport):
    """Pooled keep-alive HTTP(S): the default transport.

    ``proxy`` is an ``http://[user:password@]host:port`` URL; ``ssl_context`` replaces the
    default one (certifi's CA bundle, hostnames checked). Safe to share between threads.
    """

    def __init__(
        self,
        *,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_per_host: int = DEFAULT_MAX_IDLE_PER_HOST,
    ):
        self.proxy = Proxy.from_url(proxy) if proxy else None
        self.max_idle_per_host = max_idle_per_host
        self._ssl_context = ssl_context
        self._idle: dict[HostKey, deque[Connection]] = {}
        self._lock = threading.Lock()

    # -- sending ---------------------------------------------------------------------

    def send(self, request: Request) -> Response:
        key = (request.scheme, request.host, request.port)
        idle = self._idle.get(key)
        if idle is None:
            with self._lock:
                idle = self._idle.setdefault(key, deque())
        data = self.encode(request)
        while True:
            conn = _pop(idle)
            reused = conn is not None
            if conn is None:
                conn = self._connect(request)
            if reused and conn.is_dropped():
                conn.close()
                continue
            try:
                parsed = conn.exchange(data, request.timeout, request.method == "HEAD")
            except _StaleConnection as exc:
                conn.close()
                if reused:
                    continue
                raise PusherConnectionError(f"{request.host}:{request.port} {exc}") from exc
            except TimeoutError as exc:
                conn.close()
                raise PusherTimeout(
                    f"no answer from {request.host}:{request.port} within {request.timeout} s"
                ) from exc
            except (OSError, ProtocolError) as exc:
                conn.close()
                where = f"{request.host}:{request.port}"
                raise PusherConnectionError(f"request to {where} failed: {exc}") from exc
            if parsed.keep_alive and len(idle) < self.max_idle_per_host:
                idle.append(conn)
            else:
                conn.close()
            return parsed.response

    def encode(self, request: Request) -> bytes:
        """``request`` as written on this transport's connections (through a proxy, plain
        HTTP requests name the whole URL and carry the proxy's credentials)."""
        if self.proxy is not None and request.scheme == "http":
            return encode_request(request, absolute_form=True, extra_headers=self.proxy.auth_header)
        return encode_request(request)

    def tls_context(self) -> ssl.SSLContext:
        """The context HTTPS connections are made with."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=certifi.where())
        return self._ssl_context

    # -- connecting ------------------------------------------------------------------

    def _connect(self, request: Request) -> Connection:
        proxy = self.proxy
        where = (proxy.host, proxy.port) if proxy else (request.host, request.port)
        try:
            sock = socket.create_connection(where, timeout=request.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if request.scheme == "https":
                if proxy:
                    _tunnel(sock, request, proxy)
                sock = self.tls_context().wrap_socket(sock, server_hostname=request.host)
        except TimeoutError as exc:
            raise PusherTimeout(f"connecting to {where[0]}:{where[1]} timed out") from exc
        except (OSError, ProtocolError) as exc:
            raise PusherConnectionError(f"cannot connect to {where[0]}:{where[1]}: {exc}") from exc
        return Connection(sock, request.timeout)

    def close(self) -> None:
        with self._lock:
            pools, self._idle = list(self._idle.values()), {}
        for idle in pools:
            while idle:
                idle.pop().close()
        super().close()


def _pop(idle: deque[Connection]) -> Connection | None:
    try:
        return idle.pop()
    except IndexError:  # another thread took the last one
        return None


def _tunnel(sock: socket.socket, request: Request, proxy: Proxy) -> None:
    """Ask ``proxy`` (connected on ``sock``) for a tunnel to the request's host."""
    authority = f"{request.host}:{request.port}"
    sock.sendall(encode_connect(authority, proxy.auth_header))
    answer = Connection(sock, request.timeout).read_response(head_only=True).response
    if answer.status != 200:
        raise ProtocolError(f"proxy refused CONNECT {authority}: {answer.status}")


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: where it listens, and its ``Proxy-Authorization`` header line (or "")."""

    host: str
    port: int
    auth_header: str

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        """The proxy of an ``http://[user:password@]host[:port]`` URL (port 8080 by default)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise PusherValueError(f"proxy must be an http://host:port URL, got {url!r}")
        auth = ""
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
            auth = f"Proxy-Authorization: Basic {token}\r\n"
        return cls(parts.hostname, parts.port or 8080, auth)
