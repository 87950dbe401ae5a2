"""The sans-I/O HTTP/1.1 module (pusherlib.transports.http11): request heads out, responses
in, fed whole, byte by byte and malformed; no socket anywhere."""

from __future__ import annotations

import pytest

from pusherlib import PusherConnectionError
from pusherlib.transports.base import Request, Response
from pusherlib.transports.http11 import (
    MAX_HEAD_BYTES,
    ParsedResponse,
    ProtocolError,
    ResponseParser,
    encode_connect,
    encode_request,
)


def request(method="POST", scheme="http", host="api.example.com", port=80, body=b'{"a":1}', headers=()):
    return Request(method, scheme, host, port, "/apps/1/events?x=1", body, 5.0, headers)


def feed_whole(data: bytes, head_only: bool = False, close: bool = False) -> ParsedResponse:
    parser = ResponseParser(head_only)
    parsed = parser.feed(data)
    if close:
        assert parsed is None
        parsed = parser.feed(b"")
    assert parsed is not None
    return parsed


def feed_bytewise(data: bytes, head_only: bool = False, close: bool = False) -> ParsedResponse:
    """Feed one byte at a time: None until the last byte (or the close) completes it."""
    parser = ResponseParser(head_only)
    for index in range(len(data)):
        parsed = parser.feed(data[index : index + 1])
        if parsed is not None:
            assert not close and index == len(data) - 1, f"complete after {index + 1} of {len(data)} bytes"
            return parsed
    assert close, "still incomplete after every byte"
    return parser.feed(b"")


def refused(data: bytes, match: str, **options) -> None:
    with pytest.raises(ProtocolError, match=match):
        ResponseParser(**options).feed(data)


# -- encoding requests ----------------------------------------------------------------------------


def test_post_with_a_body():
    data = encode_request(request(headers=(("Content-Type", "application/json"),)))
    assert data == (
        b"POST /apps/1/events?x=1 HTTP/1.1\r\nHost: api.example.com\r\n"
        b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n"
        b'{"a":1}'
    )


def test_get_without_a_body_has_no_content_length():
    data = encode_request(request("GET", body=None))
    assert data == b"GET /apps/1/events?x=1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"


@pytest.mark.parametrize(
    ("scheme", "port", "authority"),
    [
        ("http", 80, "api.example.com"),
        ("https", 443, "api.example.com"),
        ("http", 443, "api.example.com:443"),
        ("https", 80, "api.example.com:80"),
        ("http", 6001, "api.example.com:6001"),
    ],
)
def test_host_names_the_port_only_when_not_the_default(scheme, port, authority):
    sent = request(scheme=scheme, port=port)
    assert sent.authority == authority
    assert f"\r\nHost: {authority}\r\n".encode() in encode_request(sent)
    assert sent.url == f"{scheme}://{authority}/apps/1/events?x=1"


@pytest.mark.parametrize(
    ("host", "port", "authority", "host_and_port"),
    [
        ("::1", 6001, "[::1]:6001", "[::1]:6001"),
        ("2001:db8::7", 80, "[2001:db8::7]", "[2001:db8::7]:80"),
        ("b\u00fccher.example", 80, "xn--bcher-kva.example", "xn--bcher-kva.example:80"),
        ("\u043f\u0440\u0438\u043c\u0435\u0440.ru", 8080, "xn--e1afmkfd.ru:8080", "xn--e1afmkfd.ru:8080"),
    ],
)
def test_ipv6_literals_are_bracketed_and_names_idna_encoded(host, port, authority, host_and_port):
    sent = request(host=host, port=port)
    assert (sent.authority, sent.host_and_port) == (authority, host_and_port)
    assert f"\r\nHost: {authority}\r\n".encode() in encode_request(sent)
    assert sent.url == f"http://{authority}/apps/1/events?x=1"


def test_a_host_name_idna_cannot_encode():
    with pytest.raises(PusherConnectionError, match="cannot be IDNA-encoded"):
        encode_request(request(host="\u00fc" + "x" * 70 + ".example"))


def test_absolute_form_and_extra_headers_for_a_proxy():
    data = encode_request(
        request("GET", port=6001, body=None),
        absolute_form=True,
        extra_headers="Proxy-Authorization: Basic dTpw\r\n",
    )
    assert data == (
        b"GET http://api.example.com:6001/apps/1/events?x=1 HTTP/1.1\r\nHost: api.example.com:6001\r\n"
        b"Proxy-Authorization: Basic dTpw\r\n\r\n"
    )


def test_connect_names_host_and_port():
    assert encode_connect("api.example.com:443") == (
        b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n"
    )


# -- well-formed responses, whole and byte by byte ------------------------------------------------

FEEDS = pytest.mark.parametrize("feed", [feed_whole, feed_bytewise], ids=["whole", "bytewise"])

SOKETI_ANSWER = (
    b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nuWebSockets: 20\r\nContent-Length: 11\r\n\r\n"
    b'{"ok":true}'
)


@FEEDS
def test_content_length_body(feed):
    parsed = feed(SOKETI_ANSWER)
    assert parsed.response == Response(
        200,
        b'{"ok":true}',
        {
            "access-control-allow-origin": "*",
            "content-type": "application/json",
            "connection": "close",
            "uwebsockets": "20",
            "content-length": "11",
        },
    )
    assert (parsed.keep_alive, parsed.consumed) == (False, len(SOKETI_ANSWER))


@FEEDS
def test_chunked_body_with_extensions_and_trailers(feed):
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;name=value\r\nhello\r\n1\r\n \r\nA; quoted="x;y"\r\nworld!!!!!\r\n'
        b"0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )
    parsed = feed(answer)
    assert parsed.response.body == b"hello world!!!!!"
    assert parsed.response.headers == {"transfer-encoding": "chunked"}  # trailers are dropped
    assert (parsed.keep_alive, parsed.consumed) == (True, len(answer))


@FEEDS
def test_whitespace_between_a_chunk_size_and_its_extension_is_refused(feed):
    """As h11 refuses it (RFC 9112 allows it; the parser is never more lenient than h11)."""
    with pytest.raises(ProtocolError, match="bad chunk size line"):
        feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 ;a=b\r\nx\r\n0\r\n\r\n")


@FEEDS
def test_chunked_body_without_trailers(feed):
    parsed = feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert (parsed.response.body, parsed.keep_alive) == (b"abc", True)


@FEEDS
def test_no_length_reads_until_the_server_closes(feed):
    parsed = feed(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it\r\nuntil the end", close=True
    )
    assert parsed.response.body == b"all of it\r\nuntil the end"
    assert parsed.keep_alive is False


@pytest.mark.parametrize(
    "transfer_encoding",
    [b"gzip", b"gzip, chunked", b"chunked, chunked", b"chunked\r\nTransfer-Encoding: chunked", b"identity"],
)
def test_transfer_encoding_other_than_chunked_alone_is_refused(transfer_encoding):
    # what h11 refuses too (RFC 9112 6.1: a client cannot ask for other codings)
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + transfer_encoding + b"\r\n\r\n0\r\n\r\n"
    refused(answer, "unsupported Transfer-Encoding")


@FEEDS
def test_bare_lf_line_endings(feed):
    parsed = feed(b"HTTP/1.1 200 OK\nContent-Type: application/json\r\nContent-Length: 2\n\nok")
    assert (parsed.response.status, parsed.response.body) == (200, b"ok")
    assert parsed.response.headers == {"content-type": "application/json", "content-length": "2"}


@FEEDS
def test_bare_lf_trailer(feed):
    parsed = feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\n\n")
    assert parsed.response.body == b"ok"


@FEEDS
def test_obsolete_line_folding_is_unfolded(feed):
    parsed = feed(b"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\n\tthree\r\nContent-Length: 0\r\n\r\n")
    assert parsed.response.headers == {"x-long": "one two three", "content-length": "0"}


@FEEDS
@pytest.mark.parametrize("status", [204, 304])
def test_no_body_for_204_and_304(feed, status):
    parsed = feed(f"HTTP/1.1 {status} Nothing\r\nContent-Length: 10\r\n\r\n".encode())
    assert (parsed.response.status, parsed.response.body, parsed.keep_alive) == (status, b"", True)


@FEEDS
def test_no_body_in_the_answer_to_head(feed):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    parsed = feed(answer, head_only=True)
    assert (parsed.response.body, parsed.keep_alive, parsed.consumed) == (b"", True, len(answer))


@FEEDS
def test_interim_responses_are_skipped(feed):
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"
    )
    parsed = feed(answer)
    assert (parsed.response.status, parsed.response.body, parsed.consumed) == (201, b"{}", len(answer))
    assert parsed.response.headers == {"content-length": "2"}


def test_status_line_without_reason_phrase():
    assert feed_whole(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n").response.status == 404


def test_repeated_fields_are_joined_and_values_trimmed():
    parsed = feed_whole(
        b"HTTP/1.1 200 OK\r\nVary: Origin\r\nVARY:\tAccept \r\nX-Empty:\r\nContent-Length: 0\r\n\r\n"
    )
    assert parsed.response.headers == {"vary": "Origin, Accept", "x-empty": "", "content-length": "0"}


def test_repeated_identical_content_lengths_are_one():
    assert feed_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok").response.body == b"ok"


def test_transfer_encoding_wins_over_content_length_and_the_connection_is_not_reused():
    parsed = feed_whole(
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    assert (parsed.response.body, parsed.keep_alive) == (b"", False)


# -- keep-alive -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("1.1", None, True),
        ("1.1", "close", False),
        ("1.1", "Close", False),
        ("1.1", "keep-alive", True),
        ("1.1", "Upgrade, close", False),
        ("1.1", "upgrade", True),
        ("1.0", None, False),
        ("1.0", "keep-alive", True),
        ("1.0", "Keep-Alive, Upgrade", True),
        ("1.0", "close", False),
    ],
)
def test_keep_alive_rules(version, connection, keep_alive):
    header = f"Connection: {connection}\r\n" if connection else ""
    answer = f"HTTP/{version} 200 OK\r\n{header}Content-Length: 2\r\n\r\nok".encode()
    assert feed_whole(answer).keep_alive is keep_alive


def test_bytes_after_the_response_mean_the_connection_is_not_reused():
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    parsed = feed_whole(answer + b"HTTP/1.1 200 OK\r\n")
    assert (parsed.response.body, parsed.keep_alive, parsed.consumed) == (b"ok", False, len(answer))


def test_started_once_a_byte_arrived():
    parser = ResponseParser()
    assert not parser.started
    parser.feed(b"H")
    assert parser.started


# -- malformed answers: clear errors, at once -----------------------------------------------------


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/2 200 OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 200OK",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 600 High",
        b"HTTP/1.1  200 OK",
        b"http/1.1 200 OK",
        b"ICY 200 OK",
        b"HTTP/1.1 200 Bad\x00Reason",
    ],
)
def test_bad_status_lines(status_line):
    refused(status_line + b"\r\nContent-Length: 0\r\n\r\n", "bad status line")


def test_an_answer_that_is_not_http_fails_before_its_head_ends():
    refused(b"SSH-2.0-OpenSSH_9.6", "not an HTTP/1.x response")


def test_a_bad_status_line_fails_before_the_head_ends():
    refused(b"HTTP/1.1 OK 200\r\nX-More:", "bad status line")


@pytest.mark.parametrize(
    "line",
    [
        b"No colon here",
        b"Content-Length : 5",
        b": no name",
        b"Bad\x01Name: x",
        b"Bad(Name): x",
        b"Bad/Name: x",
        b"B\xe4d: x",
        b"X-Nul: a\x00b",
        b"X-Cr: a\rb",
        b"X-Vt: a\x0bb",
    ],
)
def test_bad_header_lines(line):
    refused(b"HTTP/1.1 200 OK\r\nX-Good: 1\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n", "bad header")


def test_folding_onto_the_status_line_is_refused():
    refused(b"HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 0\r\n\r\n", "folded onto the status line")


@pytest.mark.parametrize(
    "value", [b"abc", b"-1", b"1 2", b"+5", b"\xb2", b"5, 6", b"", b"9" * 5000, b"1" * 19]
)
def test_bad_content_length(value):
    refused(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n", "bad Content-Length")


@pytest.mark.parametrize("size_line", [b"zz", b"0x10", b"-1", b"", b"1_0", b" 5", b"12345678901234567"])
def test_bad_chunk_size_lines(size_line):
    refused(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\n", "bad chunk size")


def test_chunk_longer_than_its_size():
    refused(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", "longer than its size")


def test_bad_trailer_line():
    refused(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", "bad header line")


def test_switching_protocols_was_not_asked_for():
    refused(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "101 Switching Protocols")


# -- limits -------------------------------------------------------------------------------------


def test_too_many_header_fields():
    fields = b"".join(b"X-%d: v\r\n" % n for n in range(101))
    refused(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n", "more than 100 response header fields")


def test_header_field_limit_is_configurable():
    answer = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n"
    refused(answer, "more than 2 response header fields", max_headers=2)
    assert ResponseParser(max_headers=3).feed(answer) is not None


def test_too_many_trailer_fields():
    trailers = b"".join(b"X-%d: v\r\n" % n for n in range(4))
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers + b"\r\n"
    refused(answer, "more than 3 trailer fields", max_headers=3)


def test_a_head_that_never_ends_fails_at_the_size_limit():
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ProtocolError, match=f"over {MAX_HEAD_BYTES} bytes"):
        for _ in range(MAX_HEAD_BYTES // 1000 + 1):
            assert parser.feed(b"X-Long: " + b"a" * 990 + b"\r\n") is None


def test_a_head_over_the_limit_fails_even_when_complete():
    refused(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 200 + b"\r\n\r\n", "over 100 bytes", max_head_bytes=100)


def test_a_head_fed_byte_by_byte_fails_at_the_limit():
    parser = ResponseParser(max_head_bytes=1000)
    data = b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * 2000
    with pytest.raises(ProtocolError, match="over 1000 bytes"):
        for index in range(len(data)):
            parser.feed(data[index : index + 1])
    assert index < 1100


def test_a_status_line_that_never_ends():
    refused(b"HTTP/1.1 200 " + b"r" * 2000, "status line over 1024 bytes")


def test_a_chunk_size_line_that_never_ends():
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;" + b"e" * 200
    refused(answer, "over 100 bytes", max_head_bytes=100)


# -- the connection closing early -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "where"),
    [
        (b"", "before a response arrived"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "in the response head"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "in the response body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "in a chunked body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n", "in the trailer"),
    ],
)
def test_closed_before_the_response_is_complete(sent, where):
    parser = ResponseParser()
    if sent:
        assert parser.feed(sent) is None
    with pytest.raises(ProtocolError, match=f"the connection closed {where}"):
        parser.feed(b"")


def test_endless_interim_responses_end():
    parser = ResponseParser()
    for _ in range(10):
        assert parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n") is None
    with pytest.raises(ProtocolError, match="more than 10 interim 1xx responses"):
        parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n")


def test_a_body_over_the_limit_fails_at_its_length():
    refused(b"HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n", "over 1048576")
    assert feed_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").response.body == b"abc"


def test_a_chunked_body_over_the_limit_fails_while_it_arrives():
    parser = ResponseParser(max_body_bytes=100_000)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1000, b"x" * 1000)
    with pytest.raises(ProtocolError, match="response body over 100000 bytes"):
        for _ in range(101):
            parser.feed(chunk)


def test_a_body_until_close_over_the_limit_fails_while_it_arrives():
    parser = ResponseParser(max_body_bytes=10)
    parser.feed(b"HTTP/1.0 200 OK\r\n\r\n0123456789")
    with pytest.raises(ProtocolError, match="response body over 10 bytes"):
        parser.feed(b"!")


def test_the_buffer_drops_what_was_parsed():
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1000, b"x" * 1000)
    for _ in range(500):
        parser.feed(chunk)
    assert len(parser._buffer) < 70_000  # 500 KB went through it
    parsed = parser.feed(b"0\r\n\r\n")
    assert parsed is not None and parsed.response.body == b"x" * 500_000
    assert (
        parsed.consumed
        == len(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") + 500 * len(chunk) + 5
    )
