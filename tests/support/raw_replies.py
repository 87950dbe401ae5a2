"""A :class:`~tests.support.fault_server.FaultServer` that can also answer with bytes written
as they are: malformed answers, HTTP/1.0, interim responses, answers cut short or sent in
small pieces, for the transports' HTTP parsing."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from tests.support.fault_server import FaultServer

PIECE_PAUSE_SECONDS = 0.002


@dataclass(frozen=True)
class Raw:
    """Write ``data`` as it is, ``piece`` bytes at a time (0: at once), then close the
    connection unless ``keep_open``."""

    data: bytes
    piece: int = 0
    keep_open: bool = False


class RawReplyServer(FaultServer):
    """A FaultServer whose script may hold :class:`Raw` steps too."""

    def _perform(self, step, sock: socket.socket) -> bool:
        if not isinstance(step, Raw):
            return super()._perform(step, sock)
        size = step.piece or len(step.data)
        for start in range(0, len(step.data), size):
            sock.sendall(step.data[start : start + size])
            if step.piece:
                time.sleep(PIECE_PAUSE_SECONDS)  # let each piece arrive on its own
        return step.keep_open


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
}
