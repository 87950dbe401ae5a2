"""The default transport: HTTP/1.1 over pooled keep-alive connections.

A deliberately small HTTP/1.1 client: requests are written in one ``sendall``, responses
read from a buffered socket (status line, headers, then a ``Content-Length`` or chunked
body). Idle connections wait in a per-host pool; one that the server closed while idle is
replaced and the request sent again, once, before any answer was read from it.
HTTPS is verified against certifi's CA bundle; an HTTP proxy is optional (``CONNECT``
tunnels for HTTPS).
"""

from __future__ import annotations

import base64
import select
import socket
import ssl
import threading
from collections import deque
from io import BufferedReader
from typing import cast
from urllib.parse import unquote, urlsplit

import certifi

from ..errors import PusherConnectionError, PusherTimeout, PusherValueError
from .base import Request, Response, Transport

MAX_LINE = 65536
MAX_HEADERS = 100
DEFAULT_MAX_IDLE_PER_HOST = 16

HostKey = tuple[str, str, int]


class _StaleConnection(Exception):
    """A pooled connection was closed by the server before it answered."""


class _ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as expected."""


class Connection:
    """One socket and its buffered reader."""

    __slots__ = ("rfile", "sock", "timeout")

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        # typeshed types a buffered "rb" makefile of any other size as a plain IOBase
        self.rfile = cast(BufferedReader, sock.makefile("rb", buffering=MAX_LINE))
        self.timeout = timeout

    def is_dropped(self) -> bool:
        """True when the peer closed (or wrote unasked): the connection is not reusable."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def exchange(self, data: bytes, timeout: float, head_only: bool = False) -> tuple[Response, bool]:
        """Write one request; read its response. Returns it and whether to keep the connection."""
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout
        try:
            self.sock.sendall(data)
            status_line = self.rfile.readline(MAX_LINE)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _StaleConnection() from exc
        if not status_line:
            raise _StaleConnection()
        return self._read_response(status_line, head_only)

    def _read_response(self, status_line: bytes, head_only: bool) -> tuple[Response, bool]:
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise _ProtocolError(f"bad status line {status_line[:80]!r}")
        status = int(parts[1])
        keep_alive = parts[0] == b"HTTP/1.1"
        headers: dict[str, str] = {}
        readline = self.rfile.readline
        for _ in range(MAX_HEADERS):
            line = readline(MAX_LINE)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise _ProtocolError("connection closed in the response headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise _ProtocolError("too many response headers")
        connection = headers.get("connection", "").lower()
        if connection == "close":
            keep_alive = False
        elif connection == "keep-alive":
            keep_alive = True
        if head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body = self.rfile.read(length)
            if len(body) != length:
                raise _ProtocolError("connection closed in the response body")
        else:
            body = self.rfile.read()
            keep_alive = False
        return Response(status, body, headers), keep_alive

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        readline = self.rfile.readline
        while True:
            size_line = readline(MAX_LINE)
            if not size_line:
                raise _ProtocolError("connection closed in a chunked body")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunk = self.rfile.read(size + 2)
            if len(chunk) != size + 2:
                raise _ProtocolError("connection closed in a chunked body")
            chunks.append(chunk[:-2])

    def close(self) -> None:
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass


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
        self._proxy = _parse_proxy(proxy) if proxy else None
        self._ssl_context = ssl_context
        self._max_idle = max_idle_per_host
        self._idle: dict[HostKey, deque[Connection]] = {}
        self._lock = threading.Lock()

    # -- sending ---------------------------------------------------------------------

    def send(self, request: Request) -> Response:
        key = (request.scheme, request.host, request.port)
        idle = self._idle.get(key)
        if idle is None:
            with self._lock:
                idle = self._idle.setdefault(key, deque())
        data = self._encode(request)
        while True:
            conn = _pop(idle)
            reused = conn is not None
            if conn is None:
                conn = self._connect(request)
            if reused and conn.is_dropped():
                conn.close()
                continue
            try:
                response, keep_alive = conn.exchange(data, request.timeout, request.method == "HEAD")
            except _StaleConnection as exc:
                conn.close()
                if reused:
                    continue
                raise PusherConnectionError(
                    f"{request.host}:{request.port} closed the connection without answering"
                ) from exc
            except TimeoutError as exc:
                conn.close()
                raise PusherTimeout(
                    f"no answer from {request.host}:{request.port} within {request.timeout} s"
                ) from exc
            except (OSError, _ProtocolError, ValueError) as exc:
                conn.close()
                raise PusherConnectionError(
                    f"request to {request.host}:{request.port} failed: {exc}"
                ) from exc
            if keep_alive and len(idle) < self._max_idle:
                idle.append(conn)
            else:
                conn.close()
            return response

    def _encode(self, request: Request) -> bytes:
        if self._proxy and request.scheme == "http":
            target = request.url
            extra = self._proxy.auth_header
        else:
            target, extra = request.target, ""
        default_port = 443 if request.scheme == "https" else 80
        host = request.host if request.port == default_port else f"{request.host}:{request.port}"
        lines = [f"{request.method} {target} HTTP/1.1\r\nHost: {host}\r\n{extra}"]
        lines.extend(f"{name}: {value}\r\n" for name, value in request.headers)
        body = request.body
        if body is not None:
            lines.append(f"Content-Length: {len(body)}\r\n\r\n")
            return "".join(lines).encode("latin-1") + body
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    # -- connecting ------------------------------------------------------------------

    def _connect(self, request: Request) -> Connection:
        where = (self._proxy.host, self._proxy.port) if self._proxy else (request.host, request.port)
        try:
            sock = socket.create_connection(where, timeout=request.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if request.scheme == "https":
                if self._proxy:
                    self._tunnel(sock, request)
                sock = self._tls_context().wrap_socket(sock, server_hostname=request.host)
        except TimeoutError as exc:
            raise PusherTimeout(f"connecting to {where[0]}:{where[1]} timed out") from exc
        except (OSError, _ProtocolError) as exc:
            raise PusherConnectionError(f"cannot connect to {where[0]}:{where[1]}: {exc}") from exc
        return Connection(sock, request.timeout)

    def _tunnel(self, sock: socket.socket, request: Request) -> None:
        assert self._proxy is not None
        authority = f"{request.host}:{request.port}"
        sock.sendall(
            f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{self._proxy.auth_header}\r\n".encode(
                "latin-1"
            )
        )
        reader = Connection(sock, request.timeout)
        response, _ = reader._read_response(reader.rfile.readline(MAX_LINE), head_only=True)
        reader.rfile.close()  # the socket stays open for TLS
        if response.status != 200:
            raise _ProtocolError(f"proxy refused CONNECT {authority}: {response.status}")

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=certifi.where())
        return self._ssl_context

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


class _Proxy:
    __slots__ = ("auth_header", "host", "port")

    def __init__(self, host: str, port: int, auth_header: str):
        self.host, self.port, self.auth_header = host, port, auth_header


def _parse_proxy(url: str) -> _Proxy:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise PusherValueError(f"proxy must be an http://host:port URL, got {url!r}")
    auth = ""
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
        auth = f"Proxy-Authorization: Basic {token}\r\n"
    return _Proxy(parts.hostname, parts.port or 8080, auth)
