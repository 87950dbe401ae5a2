"""A small HTTP/1.1 server that misbehaves on purpose, for what soketi cannot do.

It answers each request with the next step of a script: a status of your choice (429,
500, 503...), a slow answer, a reset, a close without answering, a chunked body, or an
answer followed by closing the kept-alive connection. It records every request::

    with FaultServer([Reply(503), Reset(), Reply.json(200, {"ok": True})]) as server:
        client = Pusher.from_url(server.pusher_url)  # or any HTTP client at server.port
        ...
        assert server.request_count == 3

When the script runs out, ``default`` (a 200 with ``{}``) answers. Besides ``requests``
it counts ``connections`` (accepted) and ``max_in_flight`` (requests being answered at
the same time), so tests can see keep-alive reuse and concurrency without timing anything.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

MAX_LINE = 65536


@dataclass(frozen=True)
class Reply:
    """Answer with ``status`` and ``body`` after ``delay`` seconds.

    ``chunked`` sends the body with ``Transfer-Encoding: chunked`` (in ``chunk_size``
    pieces); ``close_after`` closes the connection after answering although the answer
    said nothing about closing it (what a server closing idle keep-alive connections does).
    """

    status: int = 200
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    delay: float = 0
    chunked: bool = False
    chunk_size: int = 7
    close_after: bool = False

    @classmethod
    def json(cls, status: int, value: object, **options) -> Reply:
        """A reply whose body is ``value`` as JSON."""
        return cls(status, json.dumps(value).encode("utf-8"), **options)


@dataclass(frozen=True)
class Reset:
    """Read the request, then reset the connection (TCP RST) without answering."""


@dataclass(frozen=True)
class Close:
    """Read the request, then close the connection cleanly without answering."""


Step = Reply | Reset | Close


@dataclass
class ReceivedRequest:
    """One request as the server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int = 0  # which accepted connection, counting from 1

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class FaultServer:
    """Serve ``script`` (one step per request) on ``127.0.0.1`` and a free port."""

    def __init__(self, script: Iterable[Step] = (), default: Step | None = None, host: str = "127.0.0.1"):
        self._script: deque[Step] = deque(script)
        self.default = default or Reply()
        self.requests: list[ReceivedRequest] = []
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests read and not yet answered at one time
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family)
        self.host, self.port = host, self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()

    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def open_connections(self) -> int:
        """Accepted connections that neither side has closed yet."""
        with self._lock:
            return len(self._open)

    @property
    def pusher_url(self) -> str:
        """A ``PUSHER_URL`` (app 1, key ``key``, secret ``secret``) that points here."""
        return f"http://key:secret@{self.host}:{self.port}/apps/1"

    def add(self, *steps: Step) -> None:
        """Append steps to the script."""
        with self._lock:
            self._script.extend(steps)

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> FaultServer:
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stopping.set()
        _shutdown(self._listener)  # wakes the thread blocked in accept()
        self._listener.close()
        with self._lock:
            for sock in list(self._open):
                _shutdown(sock)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- serving ---------------------------------------------------------------------

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
                self._open.add(sock)
            self._spawn(self._serve, sock, number)

    def _serve(self, sock: socket.socket, number: int) -> None:
        rfile = sock.makefile("rb")
        try:
            while not self._stopping.is_set():
                request = _read_request(rfile, number)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                    step = self._script.popleft() if self._script else self.default
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    keep_open = self._perform(step, sock)
                finally:
                    with self._lock:
                        self.in_flight -= 1
                if not keep_open:
                    return
        except OSError:
            return
        finally:
            rfile.close()
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def _perform(self, step: Step, sock: socket.socket) -> bool:
        """Carry out one step; return whether the connection stays open."""
        if isinstance(step, Reset):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if isinstance(step, Close):
            return False
        if step.delay and self._stopping.wait(step.delay):
            return False
        sock.sendall(_encode_reply(step))
        return not step.close_after


def _read_request(rfile: BinaryIO, connection: int) -> ReceivedRequest | None:
    request_line = rfile.readline(MAX_LINE)
    if not request_line.strip():
        return None
    method, target, _ = request_line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := rfile.readline(MAX_LINE)) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = rfile.read(int(headers.get("content-length", 0)))
    return ReceivedRequest(method, target, headers, body, connection)


def _encode_reply(reply: Reply) -> bytes:
    head = [f"HTTP/1.1 {reply.status} Fault\r\n"]
    head.extend(f"{name}: {value}\r\n" for name, value in reply.headers)
    if not reply.chunked:
        head.append(f"Content-Length: {len(reply.body)}\r\n\r\n")
        return "".join(head).encode("latin-1") + reply.body
    head.append("Transfer-Encoding: chunked\r\n\r\n")
    pieces = [reply.body[i : i + reply.chunk_size] for i in range(0, len(reply.body), reply.chunk_size)]
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return "".join(head).encode("latin-1") + chunks + b"0\r\nX-Trailer: yes\r\n\r\n"


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
