"""HTTP/1.1 on the client's side, without I/O: :func:`encode_request` gives the bytes to write;
:class:`ResponseParser` turns bytes read into a :class:`ParsedResponse`. Held to h11 by
tests/pusherlib/test_http11_differential.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar, NamedTuple

from .base import Request, Response

MAX_HEADERS = 100
MAX_HEAD_BYTES = 65536
MAX_STATUS_LINE_BYTES = 1024
MAX_BODY_BYTES = 1024 * 1024  # the API's answers are small
MAX_INTERIM_RESPONSES = 10
MAX_CONTENT_LENGTH_DIGITS = 18  # more would not fit the body limit anyway, nor int() at 4,300
TRIM_BYTES = 65536  # drop parsed bytes from the buffer once there are this many

_REASON = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # tabs, spaces, visible and obs-text characters
_BLANK_LINE = re.compile(rb"\n\r?\n")
_FORBIDDEN = re.compile(r"[\x00\r\x0b\x0c]")  # left in a head once line endings are taken out
_NUL_VT_FF = re.compile(r"[\x00\x0b\x0c]")
_TOKENS = re.compile(r"(?:[-!#$%&'*+.^_`|~0-9a-z]+:)+")  # lowercased field names, each ended by ":"
# The size, an extension right after it (h11 refuses "1 ;ext"), then optional whitespace.
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?[ \t]*")


def encode_request(request: Request, *, absolute_form: bool = False, extra_headers: str = "") -> bytes:
    """``request`` as bytes with ``Host`` and ``Content-Length``; ``absolute_form`` writes the whole
    URL as target (for a proxy); ``extra_headers`` are whole CRLF-ended lines."""
    target = request.url if absolute_form else request.target
    lines = [f"{request.method} {target} HTTP/1.1\r\nHost: {request.authority}\r\n{extra_headers}"]
    lines.extend(f"{name}: {value}\r\n" for name, value in request.headers)
    body = request.body
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        return "".join(lines).encode("latin-1") + body
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def encode_connect(authority: str, extra_headers: str = "") -> bytes:
    """A ``CONNECT`` request asking an HTTP proxy for a tunnel to ``authority`` (host:port)."""
    return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{extra_headers}\r\n".encode("latin-1")


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x this client can read, or it broke off."""


class ParsedResponse(NamedTuple):
    """A complete response; ``keep_alive``: the connection can carry the next request (the
    server allows it and sent nothing after this response); ``consumed``: the bytes it took."""

    response: Response
    keep_alive: bool
    consumed: int


# What the parser reads next (indexes into ResponseParser._STEPS).
_HEAD, _FIXED_BODY, _CHUNK_SIZE_LINE, _CHUNK_DATA, _TRAILER, _UNTIL_EOF, _DONE = range(7)
_WHERE = {
    _HEAD: "in the response head",
    _FIXED_BODY: "in the response body",
    _CHUNK_SIZE_LINE: "in a chunked body",
    _CHUNK_DATA: "in a chunked body",
    _TRAILER: "in the trailer of a chunked body",
}


class ResponseParser:
    """One response, from bytes fed as they arrive: ``feed(data)`` returns a :class:`ParsedResponse`
    when complete, else None; ``feed(b"")`` means the server closed. Malformed input or a limit
    passed (``max_head_bytes``, ``max_headers``, ``max_body_bytes``) raises :class:`ProtocolError`."""

    __slots__ = (
        "_body",
        "_body_end",
        "_body_size",
        "_buffer",
        "_chunks",
        "_dropped",
        "_headers",
        "_interim",
        "_keep_alive",
        "_position",
        "_scanned",
        "_section_start",
        "_started",
        "_state",
        "_status",
        "_trailer_fields",
        "head_only",
        "max_body_bytes",
        "max_head_bytes",
        "max_headers",
        "max_interim",
    )
    # Set once the head is read:
    _status: int
    _headers: dict[str, str]
    _keep_alive: bool
    _body: bytes
    _chunks: list[bytes]  # the pieces of a chunked body
    _body_end: int  # where the body (or the current chunk) ends
    _trailer_fields: int

    def __init__(
        self,
        head_only: bool = False,
        *,
        max_headers: int = MAX_HEADERS,
        max_head_bytes: int = MAX_HEAD_BYTES,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_interim: int = MAX_INTERIM_RESPONSES,
    ):
        self.head_only = head_only
        self.max_headers = max_headers
        self.max_head_bytes = max_head_bytes
        self.max_body_bytes = max_body_bytes
        self.max_interim = max_interim
        self._buffer = bytearray()
        self._started = False
        self._dropped = 0  # bytes parsed and dropped from the front of the buffer
        self._position = 0  # where the bytes not parsed yet start
        self._scanned = 0  # how far the search for the current line's end got
        self._section_start = 0  # where the current head, chunk-size line or trailer started
        self._body_size = 0  # bytes of a chunked body so far
        self._interim = 0  # interim responses skipped
        self._state = _HEAD

    @property
    def started(self) -> bool:
        """Whether any byte of the answer arrived."""
        return self._started

    def feed(self, data: bytes) -> ParsedResponse | None:
        """Take the next bytes (``b""``: the connection closed); the response once complete."""
        if not data:
            return self._closed()
        self._started = True
        if self._position > TRIM_BYTES and self._state != _UNTIL_EOF:
            self._trim()
        self._buffer += data
        steps = self._STEPS
        while self._state != _DONE:
            if not steps[self._state](self):
                return None
        return self._result()

    def _trim(self) -> None:
        """Drop the bytes already parsed (their content is kept where it is needed)."""
        cut = self._position
        del self._buffer[:cut]
        self._dropped += cut
        self._position = 0
        self._scanned = max(0, self._scanned - cut)
        self._section_start = max(0, self._section_start - cut)
        if self._state in (_FIXED_BODY, _CHUNK_DATA):
            self._body_end -= cut

    # -- the parts of a response --------------------------------------------------------

    def _read_head(self) -> bool:
        end = self._find_blank_line()
        if end is None:
            self._check_status_line_so_far()
            return False
        head_end, after = end
        text = self._buffer[self._section_start : head_end].decode("latin-1")
        self._position = self._section_start = after
        lines = _lines(text)
        status_line = lines.pop(0)
        _check_status_line(status_line)
        if len(lines) > self.max_headers:
            raise ProtocolError(f"more than {self.max_headers} response header fields")
        headers = _fields(lines)
        status = int(status_line[9:12])
        if status < 200:
            if status == 101:
                raise ProtocolError("unexpected 101 Switching Protocols: no upgrade was asked for")
            self._interim += 1
            if self._interim > self.max_interim:
                raise ProtocolError(f"more than {self.max_interim} interim 1xx responses")
            return True  # an interim response: the final one follows
        self._status, self._headers = status, headers
        self._keep_alive = _keep_alive(status_line[7] != "0", headers.get("connection"))
        self._state = self._body_kind(status, headers)
        return True

    def _body_kind(self, status: int, headers: dict[str, str]) -> int:
        if self.head_only or status in (204, 304):
            self._body = b""
            return _DONE
        transfer_encoding = headers.get("transfer-encoding")
        if transfer_encoding is not None:
            if transfer_encoding.lower() != "chunked":  # what h11 and RFC 9112 6.1 allow a client
                raise ProtocolError(f"unsupported Transfer-Encoding {transfer_encoding[:80]!r}")
            if "content-length" in headers:  # both: a sign of response splitting, do not reuse
                self._keep_alive = False
            self._chunks = []
            return _CHUNK_SIZE_LINE
        content_length = headers.get("content-length")
        if content_length is None:
            self._keep_alive = False
            return _UNTIL_EOF
        length = _parse_content_length(content_length)
        if length > self.max_body_bytes:
            raise ProtocolError(f"response body of {length} bytes, over {self.max_body_bytes}")
        self._body_end = self._position + length
        return _FIXED_BODY

    def _read_fixed_body(self) -> bool:
        if len(self._buffer) < self._body_end:
            return False
        self._body = bytes(self._buffer[self._position : self._body_end])
        self._position = self._body_end
        self._state = _DONE
        return True

    def _read_chunk_size(self) -> bool:
        line = self._take_line()
        if line is None:
            return False
        match = _CHUNK_SIZE.fullmatch(line)
        if match is None:
            raise ProtocolError(f"bad chunk size line {bytes(line[:80])!r}")
        size = int(match[1], 16)
        self._section_start = self._position
        if size:
            self._body_size += size
            if self._body_size > self.max_body_bytes:
                raise ProtocolError(f"response body over {self.max_body_bytes} bytes")
            self._body_end = self._position + size
            self._state = _CHUNK_DATA
        else:
            self._state, self._trailer_fields = _TRAILER, 0
        return True

    def _read_chunk_data(self) -> bool:
        buffer, end = self._buffer, self._body_end
        if len(buffer) < end + 2:
            return False
        if buffer[end : end + 2] != b"\r\n":
            raise ProtocolError("a chunk is longer than its size line says")
        self._chunks.append(bytes(buffer[self._position : end]))
        self._position = self._section_start = end + 2
        self._state = _CHUNK_SIZE_LINE
        return True

    def _read_trailer(self) -> bool:
        line = self._take_line(bare_lf=True)
        if line is None:
            return False
        if not line:
            self._body = b"".join(self._chunks)
            self._state = _DONE
        elif self._trailer_fields == self.max_headers:
            raise ProtocolError(f"more than {self.max_headers} trailer fields")
        else:
            _fields(_lines(line.decode("latin-1") + "\r\n"))  # checked, then dropped
            self._trailer_fields += 1
        return True

    def _closed(self) -> ParsedResponse:
        if self._state == _UNTIL_EOF:
            self._body = bytes(self._buffer[self._section_start :])
            self._position = len(self._buffer)
            return self._result()
        if not self._started:
            raise ProtocolError("the connection closed before a response arrived")
        raise ProtocolError(f"the connection closed {_WHERE[self._state]}")

    def _result(self) -> ParsedResponse:
        keep_alive = self._keep_alive and self._position == len(self._buffer)
        consumed = self._dropped + self._position
        return ParsedResponse(Response(self._status, self._body, self._headers), keep_alive, consumed)

    # -- scanning ---------------------------------------------------------------------

    def _find_blank_line(self) -> tuple[int, int] | None:
        """Where the head ends (after its last line's LF) and the body starts, or None;
        bytes fed one at a time are not searched again and again."""
        buffer, start = self._buffer, self._section_start
        match = _BLANK_LINE.search(buffer, max(start, self._scanned - 2))
        if (len(buffer) if match is None else match.end()) - start > self.max_head_bytes:
            raise ProtocolError(f"response head over {self.max_head_bytes} bytes")
        if match is None:
            self._scanned = len(buffer)
            return None
        return match.start() + 1, match.end()

    def _take_line(self, bare_lf: bool = False) -> bytearray | None:
        """The next line without its CRLF (or, with ``bare_lf``, its LF), or None while it is
        incomplete. A chunk-size line must end in CRLF, as h11 wants it."""
        buffer = self._buffer
        end = buffer.find(b"\n", max(self._position, self._scanned))
        if (len(buffer) if end < 0 else end) - self._section_start > self.max_head_bytes:
            raise ProtocolError(f"chunk-size line or trailer over {self.max_head_bytes} bytes")
        if end < 0:
            self._scanned = len(buffer)
            return None
        line = buffer[self._position : end]
        self._position = self._scanned = end + 1
        if line.endswith(b"\r"):
            return line[:-1]
        if bare_lf:
            return line
        raise ProtocolError(f"bad chunk size line {bytes(line[:80])!r}: not ended by CRLF")

    def _check_status_line_so_far(self) -> None:
        """Fail at once on an answer that does not start like HTTP/1.x, rather than wait."""
        buffer, start = self._buffer, self._section_start
        line_end = buffer.find(b"\n", start, start + MAX_STATUS_LINE_BYTES + 2)
        if line_end >= 0:
            _check_status_line(buffer[start:line_end].decode("latin-1").removesuffix("\r"))
        elif not b"HTTP/1.".startswith(bytes(buffer[start : start + 7])):
            raise ProtocolError(f"not an HTTP/1.x response: {bytes(buffer[start : start + 80])!r}")
        elif len(buffer) - start > MAX_STATUS_LINE_BYTES:
            raise ProtocolError(f"status line over {MAX_STATUS_LINE_BYTES} bytes")

    def _read_until_eof(self) -> bool:
        """Only the end of the connection ends this body: wait, within the body limit."""
        if len(self._buffer) - self._section_start > self.max_body_bytes:
            raise ProtocolError(f"response body over {self.max_body_bytes} bytes")
        return False

    _STEPS: ClassVar[tuple[Callable[[ResponseParser], bool], ...]] = (
        _read_head,
        _read_fixed_body,
        _read_chunk_size,
        _read_chunk_data,
        _read_trailer,
        _read_until_eof,
    )


def _check_status_line(line: str) -> None:
    """``HTTP/1.x NNN[ reason]`` with a status from 100 to 599 (string methods: cheaper than
    a regular expression in the NDB driver's loop, BENCHMARKS.md)."""
    code, reason = line[9:12], line[12:]
    if not (
        line.startswith("HTTP/1.")
        and line[7:8].isdecimal()
        and line[8:9] == " "
        and len(code) == 3
        and code.isdecimal()
        and "1" <= code[0] <= "5"
        and (not reason or (reason[0] == " " and (reason.isprintable() or _REASON.fullmatch(reason))))
    ):
        raise ProtocolError(f"bad status line {line[:80]!r}")


def _lines(text: str) -> list[str]:
    """The lines of ``text``, each ended by CRLF or a bare LF (endings removed), with
    obsolete line folding unfolded; a CR, NUL, VT or FF left in a line is refused."""
    crlf = text.count("\r\n")
    if text.count("\n") == crlf == text.count("\r") and not _NUL_VT_FF.search(text):  # most answers
        lines = text.split("\r\n")
        lines.pop()  # after the last CRLF
        if "\r\n " in text or "\r\n\t" in text:
            lines = _unfold(lines)
        return lines
    text = text.replace("\r\n", "\n").removesuffix("\n")
    bad = _FORBIDDEN.search(text)
    if bad:
        where = "status line" if "\n" not in text[: bad.start()] else "header value"
        raise ProtocolError(f"bad {where}: {text[max(0, bad.start() - 40) : bad.end() + 40]!r}")
    lines = text.split("\n")
    if "\n " in text or "\n\t" in text:
        lines = _unfold(lines)
    return lines


def _unfold(lines: list[str]) -> list[str]:
    """Lines with obsolete folding (a line starting with SP or HTAB continues the one before,
    joined by one space); the first line (the status line) cannot be continued."""
    unfolded = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if len(unfolded) == 1:
                raise ProtocolError(f"bad header line {line[:80]!r}: folded onto the status line")
            unfolded[-1] += " " + line.lstrip(" \t")
        else:
            unfolded.append(line)
    return unfolded


def _fields(lines: list[str]) -> dict[str, str]:
    """Field lines as a dict of lowercased names, repeats joined; a name must be a token (RFC 9110)."""
    fields: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise ProtocolError(f"bad header line {line[:80]!r}")
        name = name.lower()
        value = value.strip(" \t")
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    names = "".join(fields)
    if names.isascii() and names.replace("-", "").isalnum() and "" not in fields:  # most answers
        return fields
    for name in fields:
        if not _TOKENS.fullmatch(name + ":"):
            raise ProtocolError(f"bad header name {name[:80]!r}")
    return fields


def _keep_alive(http_1_1: bool, connection: str | None) -> bool:
    if connection is None:
        return http_1_1
    connection = connection.lower()
    if connection in ("close", "keep-alive"):  # most answers: one option
        return connection == "keep-alive"
    options = {option.strip() for option in connection.split(",")}
    return "close" not in options and (http_1_1 or "keep-alive" in options)


def _parse_content_length(value: str) -> int:
    """The body's length (a repeated Content-Length must repeat the same number)."""
    if value.isdigit() and value.isascii() and len(value) <= MAX_CONTENT_LENGTH_DIGITS:  # most answers
        return int(value)
    length, *others = {part.strip(" \t") for part in value.split(",")}
    if others or not (length.isdigit() and length.isascii()) or len(length) > MAX_CONTENT_LENGTH_DIGITS:
        raise ProtocolError(f"bad Content-Length {value[:80]!r}")
    return int(length)
