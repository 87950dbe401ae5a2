"""Differential fuzzing of the hand-written HTTP/1.1 response parser against h11.

The parser (pusherlib.transports.http11) is kept for speed; h11 is the reference. On a
well-formed response both must give the same status, headers and body; on any response,
whatever h11 refuses the parser must refuse too. The parser may be stricter than h11 only
where it says so: HTTP versions other than 1.0 and 1.1, statuses outside 100-599, a bare
CR in a chunk extension, the body and interim-response limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import h11
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pusherlib.transports.http11 import ProtocolError, ResponseParser

FUZZ = settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VALUE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F)) + "\x80\xa0\xe9\xff"


@dataclass(frozen=True)
class Parsed:
    """What a parser made of a response: status, headers (names lowercased, repeated fields
    joined by ", ") and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def by_h11(data: bytes) -> Parsed | None:
    """h11's reading of ``data`` followed by the end of the connection, or None if refused."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="GET", target="/", headers=[("Host", "example.com")]))
    connection.send(h11.EndOfMessage())
    connection.receive_data(data)
    connection.receive_data(b"")
    status, headers, body = 0, {}, bytearray()
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    key = name.decode("latin-1")
                    text = value.decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return Parsed(status, headers, bytes(body))
            elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return None
    except h11.RemoteProtocolError:
        return None


def by_pusherlib(data: bytes, piece: int) -> Parsed | None:
    """The parser's reading of ``data`` fed ``piece`` bytes at a time then the end of the
    connection, or None if refused."""
    parser = ResponseParser()
    try:
        for start in range(0, len(data), piece):
            parsed = parser.feed(data[start : start + piece])
            if parsed is not None:
                break
        else:
            parsed = parser.feed(b"")
    except ProtocolError:
        return None
    response = parsed.response
    return Parsed(response.status, response.headers, response.body)


# -- well-formed responses ---------------------------------------------------------------------

tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
values = st.text(VALUE_CHARS + " \t", max_size=20).map(lambda text: text.strip(" \t"))
line_ends = st.sampled_from(["\r\n", "\r\n", "\n"])
reasons = st.text(VALUE_CHARS + " \t", max_size=15)
framing_names = {"content-length", "transfer-encoding", "connection"}
fields = st.lists(
    st.tuples(tokens.filter(lambda name: name.lower() not in framing_names), values), max_size=6
)


@st.composite
def head_lines(draw, status: int, extra: list[tuple[str, str]]) -> bytes:
    version = draw(st.sampled_from(["1.0", "1.1"]))
    reason = draw(st.one_of(st.just(""), reasons.map(lambda text: " " + text)))
    lines = [f"HTTP/{version} {status}{reason}"]
    for name, value in draw(fields):
        lines.append(f"{name}:{draw(st.sampled_from(['', ' ', '  ', chr(9)]))}{value}")
        if draw(st.integers(0, 9)) == 0 and value:  # an obsolete fold
            lines[-1] += f"{draw(line_ends)} {draw(values)}"
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("".join(line + draw(line_ends) for line in lines) + draw(line_ends)).encode("latin-1")


@st.composite
def chunked_body(draw) -> tuple[bytes, bytes]:
    pieces = draw(st.lists(st.binary(min_size=1, max_size=30), max_size=5))
    wire = b""
    for piece in pieces:
        extension = draw(st.sampled_from([b"", b";a=b", b';q="x"']))
        wire += b"%x%s\r\n%s\r\n" % (len(piece), extension, piece)
    trailers = draw(st.lists(st.tuples(tokens, values), max_size=2))
    wire += b"0\r\n" + b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in trailers) + b"\r\n"
    return wire, b"".join(pieces)


@st.composite
def responses(draw) -> bytes:
    """An interim response or two, then a final one framed by length, chunks or the close."""
    interim_statuses = draw(st.lists(st.sampled_from([100, 103]), max_size=2))
    interim = b"".join(draw(head_lines(status, [])) for status in interim_statuses)
    status = draw(st.integers(200, 599).filter(lambda status: status not in (204, 304)))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    body = draw(st.binary(max_size=60))
    if framing == "length":
        return interim + draw(head_lines(status, [("Content-Length", str(len(body)))])) + body
    if framing == "chunked":
        wire, _ = draw(chunked_body())
        return interim + draw(head_lines(status, [("Transfer-Encoding", "chunked")])) + wire
    return interim + draw(head_lines(status, [("Connection", "close")])) + body


@FUZZ
@given(responses(), st.sampled_from([1, 2, 7, 10_000]))
def test_well_formed_responses_read_as_h11_reads_them(data, piece):
    expected = by_h11(data)
    assert expected is not None, f"the generator made a response h11 refuses: {data!r}"
    assert by_pusherlib(data, piece) == expected


# -- malformed responses ----------------------------------------------------------------------

NASTY = [
    b"\x00",
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b":",
    b"\x0b",
    b"\x7f",
    b"\xff",
    b",",
    b"-",
    b"0",
    b"9",
    b";",
]


@st.composite
def mutated(draw) -> bytes:
    """A well-formed response with a few bytes replaced, inserted or removed, or a framing
    header of a kind h11 refuses."""
    data = bytearray(draw(responses()))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        nasty = draw(st.sampled_from(NASTY))
        if kind == "replace":
            data[where : where + 1] = nasty
        elif kind == "insert":
            data[where:where] = nasty
        else:
            del data[where : where + 1]
    return bytes(data)


framing_headers = st.sampled_from(
    [
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Content-Length: 3\r\nContent-Length: 4\r\n",
        b"Content-Length: 3, 4\r\n",
        b"Content-Length: -3\r\n",
        b"X-Nul: a\x00b\r\n",
        b"X-Cr: a\rb\r\n",
        b"Bad Name: x\r\n",
        b"Bad(Name): x\r\n",
        b"\xe4: x\r\n",
    ]
)


@st.composite
def bad_framing(draw) -> bytes:
    head = b"HTTP/1.1 200 OK\r\n" + draw(framing_headers)
    return head + b"Content-Length: 3\r\n\r\nabc" if b"Content-Length" not in head else head + b"\r\nabc"


@FUZZ
@given(st.one_of(mutated(), bad_framing()), st.sampled_from([1, 3, 10_000]))
# Found by this test: whitespace between a chunk's size and its extension.
@example(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 ;a=b\r\nx\r\n0\r\n\r\n", 1)
def test_what_h11_refuses_is_refused(data, piece):
    expected = by_h11(data)
    found = by_pusherlib(data, piece)
    if expected is None:
        assert found is None, f"h11 refuses {data!r}, pusherlib read {found!r}"
    elif found is not None:
        assert found == expected
    else:  # stricter than h11 only where the module says so
        assert _stricter_on_purpose(data), f"pusherlib refuses what h11 reads: {data!r} -> {expected!r}"


def _stricter_on_purpose(data: bytes) -> bool:
    """HTTP versions other than 1.0 and 1.1, statuses outside 100-599, a 101 answer, a bare
    CR in a chunk extension (h11 takes anything up to the CRLF there)."""
    parser = ResponseParser()
    try:
        for byte in range(len(data)):
            parser.feed(data[byte : byte + 1])
    except ProtocolError as error:
        message = str(error)
        if message.startswith("bad chunk size line") and "\\r" in message:
            return True
        return any(reason in message for reason in ("bad status line", "not an HTTP/1.x", "101"))
    return False
