"""The blocking driver (the default transport): HTTP/1.1 on pooled keep-alive sockets, HTTPS
verified against certifi, optional HTTP proxy; ``*_async`` goes through :mod:`.ndb`."""

from __future__ import annotations

import base64
import math
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import certifi

from ..errors import PusherConnectionError, PusherValueError
from .base import Request, Response, Transport
from .connections import ConnectionPool, close_quietly, resolve
from .core import (
    DEFAULT_KEEP_ALIVE_SECONDS,
    DEFAULT_MAX_IDLE_PER_HOST,
    NoAnswer,
    check_pool_timeout,
    connect_error,
    exchange_error,
    handshake_deadline,
    host_key,
    may_resend,
    remaining,
    tls_error,
    where,
)
from .http11 import (
    MAX_BODY_BYTES,
    ParsedResponse,
    ProtocolError,
    ResponseParser,
    encode_connect,
    encode_request,
)

T = TypeVar("T")

RECEIVE_BYTES = 65536


class HTTPTransport(Transport):
    """Pooled keep-alive HTTP(S), the default transport; thread-safe. ``proxy``: an
    ``http://[user:password@]host:port`` URL. Through the NDB bridge a request waits for a
    connection at most ``pool_timeout`` (see :mod:`.core`). Options: docs/pusherlib.md, 'Transports'."""

    def __init__(
        self,
        *,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_per_host: int = DEFAULT_MAX_IDLE_PER_HOST,
        keep_alive: float = DEFAULT_KEEP_ALIVE_SECONDS,
        max_response_bytes: int = MAX_BODY_BYTES,
        pool_timeout: float | None = None,
    ):
        if not 0 <= keep_alive < math.inf:
            raise PusherValueError(f"keep_alive must be a finite number of seconds, got {keep_alive!r}")
        if not isinstance(max_response_bytes, int) or max_response_bytes <= 0:
            raise PusherValueError(f"max_response_bytes must be a positive int, got {max_response_bytes!r}")
        self.proxy = Proxy.from_url(proxy) if proxy else None
        self.pool = ConnectionPool(max_idle_per_host, keep_alive)
        self.max_response_bytes = max_response_bytes
        self.pool_timeout = check_pool_timeout(pool_timeout)
        self._ssl_context = ssl_context
        self._ndb_bridge: Any = None

    @property
    def max_idle_per_host(self) -> int:
        return self.pool.max_idle_per_host

    # -- sending ---------------------------------------------------------------------

    def send(self, request: Request) -> Response:
        return self.send_before(request, time.monotonic() + request.timeout)

    def send_before(self, request: Request, deadline: float) -> Response:
        """Send ``request`` and read its answer before ``deadline`` (``time.monotonic()``)."""
        key = host_key(request)
        data = self.encode(request)
        sock = self.pool.checkout(key)
        reused = sock is not None
        while True:
            try:
                if sock is None:
                    sock = self._connect(request, deadline)
                parsed = self._exchange(sock, data, deadline, request.method == "HEAD")
            except (OSError, ProtocolError) as exc:  # NoAnswer and TimeoutError included
                if sock is not None:
                    close_quietly(sock)
                if isinstance(exc, NoAnswer) and may_resend(reused, answer_started=False):
                    sock, reused = None, False
                    continue
                raise exchange_error(request, exc) from exc
            if parsed.keep_alive:
                self.pool.checkin(key, sock)
            else:
                close_quietly(sock)
            return parsed.response

    def _exchange(self, sock: socket.socket, data: bytes, deadline: float, head_only: bool) -> ParsedResponse:
        """Write one request; read its response, every wait bounded by ``deadline``."""
        sock.settimeout(remaining(deadline))
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise NoAnswer() from exc
        return read_response(
            sock, deadline, ResponseParser(head_only, max_body_bytes=self.max_response_bytes)
        )

    def encode(self, request: Request) -> bytes:
        """``request`` as written on this transport's connections (through a proxy, plain
        HTTP requests name the whole URL and carry the proxy's credentials)."""
        try:
            if self.proxy is not None and request.scheme == "http":
                return encode_request(request, absolute_form=True, extra_headers=self.proxy.auth_header)
            return encode_request(request)
        except UnicodeEncodeError as exc:  # a header value that is not Latin-1
            raise PusherConnectionError(f"request to {where(request)} cannot be written: {exc}") from exc

    def tls_context(self) -> ssl.SSLContext:
        """The context HTTPS connections are made with."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=certifi.where())
        return self._ssl_context

    def request_async(self, request: Request, read: Callable[[Response], T]) -> Any:
        """A google-cloud-ndb future of ``read(response)`` (see :mod:`.ndb`)."""
        if self._ndb_bridge is None:
            from .ndb import NdbBridge, ThreadedNdbBridge

            in_loop = self.proxy is None and type(self).send is HTTPTransport.send
            self._ndb_bridge = (
                NdbBridge(self) if in_loop else ThreadedNdbBridge(self.send, pool_timeout=self.pool_timeout)
            )
        return self._ndb_bridge.submit(request, read)

    # -- connecting ------------------------------------------------------------------

    def _connect(self, request: Request, deadline: float) -> socket.socket:
        proxy = self.proxy
        host, port = (proxy.host, proxy.port) if proxy else (request.ascii_host, request.port)
        try:
            sock = _open(host, port, deadline)
        except OSError as exc:  # TimeoutError included
            raise connect_error(request, exc, f"{host}:{port}") from exc
        if request.scheme != "https":
            return sock
        try:
            if proxy:
                _tunnel(sock, request, proxy, deadline)
        except (OSError, ProtocolError, ValueError) as exc:  # TimeoutError included
            close_quietly(sock)
            raise connect_error(request, exc) from exc
        try:
            sock.settimeout(remaining(deadline if proxy else handshake_deadline(host, deadline)))
            return self.tls_context().wrap_socket(sock, server_hostname=request.ascii_host)
        except (OSError, ValueError) as exc:  # TimeoutError and ssl.SSLError included
            close_quietly(sock)
            raise tls_error(request, exc) from exc

    def close(self) -> None:
        self.pool.close()
        if self._ndb_bridge is not None:
            self._ndb_bridge.close()
            self._ndb_bridge = None


def read_response(sock: socket.socket, deadline: float, parser: ResponseParser) -> ParsedResponse:
    """Read one response from ``sock`` before ``deadline``; ``NoAnswer`` when the server closed or
    reset before any byte. The socket's timeout must be set to the time left."""
    recv, settimeout = sock.recv, sock.settimeout
    first = True
    while True:
        if not first:
            settimeout(remaining(deadline))
        first = False
        try:
            data = recv(RECEIVE_BYTES)
        except (BrokenPipeError, ConnectionResetError) as exc:
            if parser.started:
                raise
            raise NoAnswer() from exc
        if not data and not parser.started:
            raise NoAnswer()
        parsed = parser.feed(data)
        if parsed is not None:
            return parsed


def _open(host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection to the first of ``host``'s addresses that accepts, before ``deadline``."""
    error: OSError | None = None
    for family, kind, proto, address in resolve(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(remaining(deadline))
            sock.connect(address)
        except TimeoutError:
            close_quietly(sock)
            raise
        except OSError as exc:
            close_quietly(sock)
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError(f"no address for {host}")


def _tunnel(sock: socket.socket, request: Request, proxy: Proxy, deadline: float) -> None:
    """Ask ``proxy`` (connected on ``sock``) for a tunnel to the request's host."""
    authority = request.host_and_port
    sock.settimeout(remaining(deadline))
    sock.sendall(encode_connect(authority, proxy.auth_header))
    try:
        answer = read_response(sock, deadline, ResponseParser(head_only=True)).response
    except NoAnswer as exc:
        raise ProtocolError(f"proxy closed the connection on CONNECT {authority}") from exc
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
