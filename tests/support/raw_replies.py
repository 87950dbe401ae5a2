"""A :class:`~tests.support.fault_server.FaultServer` that can also answer with bytes written
as they are: malformed answers, HTTP/1.0, interim responses, answers cut short or sent in
small pieces, for the transports' HTTP parsing."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tests.support.fault_server import FaultServer

PIECE_PAUSE_SECONDS = 0.002


@dataclass(frozen=True)
class Raw:
    """Write ``data`` as it is, ``piece`` bytes at a time (0: at once) with ``pause``
    seconds between pieces, then ``then`` ``repeat`` times (an endless answer, as far as a
    client can tell); then close the connection unless ``keep_open``."""

    data: bytes
    piece: int = 0
    keep_open: bool = False
    pause: float = PIECE_PAUSE_SECONDS
    then: bytes = b""
    repeat: int = 0

    @property
    def size(self) -> int:
        """Every byte of the answer."""
        return len(self.data) + len(self.then) * self.repeat


class RawReplyServer(FaultServer):
    """A FaultServer whose script may hold :class:`Raw` steps too; ``bytes_sent`` counts
    the bytes of raw answers that the client took before it went away."""

    bytes_sent = 0

    def _perform(self, step, sock: socket.socket) -> bool:
        if not isinstance(step, Raw):
            return super()._perform(step, sock)
        size = step.piece or len(step.data) or 1
        for start in range(0, len(step.data), size):
            self._send(sock, step.data[start : start + size])
            if step.piece and self._stopping.wait(step.pause):  # each piece arrives on its own
                return False
        for _ in range(step.repeat):
            self._send(sock, step.then)
        return step.keep_open

    def _send(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)


# Answers both transports must read, each with the JSON it carries.
READABLE_ANSWERS = {
    "in-small-pieces": (
        Raw(b'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{"n": 1}', piece=3, keep_open=True),
        {"n": 1},
    ),
    "http-1.0-until-close": (
        Raw(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"n": 2}'),
        {"n": 2},
    ),
    "interim-response-first": (
        Raw(b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{"n": 3}'),
        {"n": 3},
    ),
}

# Answers both transports must refuse, each with what the error says. Most leave the
# connection open: the error must come from the bytes, not from a timeout.
MALFORMED_ANSWERS = {
    "bad-status-line": (Raw(b"HTTP/1.1 200OK\r\n\r\n", keep_open=True), "bad status line"),
    "not-http": (Raw(b"SSH-2.0-OpenSSH_9.6", keep_open=True), "not an HTTP/1.x response"),
    "no-colon": (Raw(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", keep_open=True), "bad header line"),
    "bad-length": (
        Raw(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", keep_open=True),
        "bad Content-Length",
    ),
    "cut-short": (Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"), "closed in the response body"),
    "5000-digit-length": (
        Raw(b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", keep_open=True),
        "bad Content-Length",
    ),
    "gzip-then-chunked": (
        Raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", keep_open=True
        ),
        "unsupported Transfer-Encoding",
    ),
    "nul-in-a-value": (
        Raw(b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}", keep_open=True),
        "bad header value",
    ),
}

# Answers without end, each with what the error says: the client must stop reading them.
ENDLESS_ANSWERS = {
    "endless-100-continue": (
        Raw(b"", then=b"HTTP/1.1 100 Continue\r\n\r\n", repeat=200_000),
        "more than 10 interim 1xx responses",
    ),
    "endless-chunked-body": (
        Raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            then=b"ffff\r\n" + b"x" * 0xFFFF + b"\r\n",
            repeat=5_000,  # 300 MB
        ),
        "response body over 1048576 bytes",
    ),
    "endless-body-until-close": (
        Raw(b"HTTP/1.0 200 OK\r\n\r\n", then=b"x" * 65536, repeat=5_000),
        "response body over 1048576 bytes",
    ),
}

# An answer dripped a byte every half second: 20 s in all.
DRIPPED = Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", piece=1, pause=0.5, keep_open=True)
