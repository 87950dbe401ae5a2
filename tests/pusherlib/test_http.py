"""The default transport: kept-alive pooled connections, stale ones retried once, chunked
answers, verified TLS (soketi serving a certificate made here) and an HTTP proxy."""

from __future__ import annotations

import json
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pusherlib import HTTPTransport, Pusher, PusherConnectionError, PusherValueError
from tests.support.fault_server import Close, FaultServer, Reply, Reset
from tests.support.proxy import ForwardProxy
from tests.support.raw_replies import MALFORMED_ANSWERS, READABLE_ANSWERS, Raw, RawReplyServer
from tests.support.soketi import SOKETI_TRIGGERED, unique
from tests.support.tls import (  # soketi serving TLS with a CA made there
    tls_client,
    tls_soketi,  # noqa: F401 - a fixture
    tls_subscriber,  # noqa: F401 - a fixture
)


@pytest.fixture
def fault():
    with FaultServer(default=Reply.json(200, {"ok": True})) as server:
        yield server


# -- keep-alive and stale connections ---------------------------------------------------------


def test_connection_is_kept_alive(fault):
    client = Pusher.from_url(fault.pusher_url)
    for _ in range(3):
        assert client.trigger("c", "e", "x") == {"ok": True}
    assert (fault.request_count, fault.connections) == (3, 1)


def test_chunked_answers(fault):
    fault.add(Reply.json(200, {"chunked": "yes" * 10}, chunked=True), Reply.json(200, {"n": 2}, chunked=True))
    client = Pusher.from_url(fault.pusher_url)
    assert client.trigger("c", "e", "x") == {"chunked": "yes" * 10}
    assert client.trigger("c", "e", "x") == {"n": 2}
    assert fault.connections == 1  # the whole chunked body and its trailer were read


def test_server_closing_an_idle_connection(fault):
    fault.add(Reply.json(200, {"n": 1}, close_after=True))
    client = Pusher.from_url(fault.pusher_url)
    assert client.trigger("c", "e", "x") == {"n": 1}
    assert client.trigger("c", "e", "x") == {"ok": True}
    assert (fault.request_count, fault.connections) == (2, 2)


@pytest.mark.parametrize("failure", [Close(), Reset()], ids=["closed", "reset"])
def test_stale_pooled_connection_is_retried_once(fault, failure):
    fault.add(Reply.json(200, {"n": 1}), failure, Reply.json(200, {"n": 2}))
    client = Pusher.from_url(fault.pusher_url)
    assert client.trigger("c", "e", "x") == {"n": 1}
    assert client.trigger("c", "e", "x") == {"n": 2}
    assert (fault.request_count, fault.connections) == (3, 2)
    assert fault.requests[1].body == fault.requests[2].body  # the same request, sent again


def test_stale_connection_retry_happens_only_once(fault):
    fault.add(Reply.json(200, {"n": 1}), Close(), Close())
    client = Pusher.from_url(fault.pusher_url)
    client.trigger("c", "e", "x")
    with pytest.raises(PusherConnectionError):
        client.trigger("c", "e", "x")
    assert fault.request_count == 3


# -- answers read as they come -----------------------------------------------------------------


@pytest.mark.parametrize(("answer", "carried"), READABLE_ANSWERS.values(), ids=READABLE_ANSWERS)
def test_answers_read_as_they_come(answer, carried):
    with RawReplyServer([answer], default=Reply.json(200, {"ok": True})) as server:
        client = Pusher.from_url(server.pusher_url)
        assert client.trigger("c", "e", "x") == carried
        assert client.trigger("c", "e", "x") == {"ok": True}
        assert server.connections == (1 if answer.keep_open else 2)
        client.close()


@pytest.mark.parametrize(("answer", "message"), MALFORMED_ANSWERS.values(), ids=MALFORMED_ANSWERS)
def test_malformed_answers_fail_with_what_is_wrong(answer, message):
    with RawReplyServer([answer]) as server:
        client = Pusher.from_url(server.pusher_url)
        with pytest.raises(PusherConnectionError, match=message) as caught:
            client.trigger("c", "e", "x")
        assert (caught.value.status, caught.value.retryable) == (None, True)
        assert client.trigger("c", "e", "x") == {}  # on a new connection
        assert server.connections == 2
        client.close()


def test_one_client_shared_by_threads(pusher, subscriber):
    channel = unique("threads-")
    subscriber.subscribe(channel)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: pusher.trigger(channel, "n", str(i)), range(120)))
    assert answers == [SOKETI_TRIGGERED] * 120
    received = {subscriber.event("n", channel)["data"] for _ in range(120)}
    assert received == {str(i) for i in range(120)}


# -- TLS -------------------------------------------------------------------------------------


def test_tls_with_a_trusted_certificate(tls_soketi, tls_subscriber):  # noqa: F811
    server, ca_path = tls_soketi
    trusted = HTTPTransport(ssl_context=ssl.create_default_context(cafile=str(ca_path)))
    with tls_client(server, trusted) as client:
        tls_subscriber.subscribe("secure")
        for n in range(3):
            client.trigger("secure", "e", {"n": n})
            assert json.loads(tls_subscriber.event("e", "secure")["data"]) == {"n": n}
        assert "secure" in client.channels_info()["channels"]


def test_tls_certificate_not_trusted_by_default(tls_soketi):  # noqa: F811
    server, _ = tls_soketi
    with tls_client(server, HTTPTransport()) as client, pytest.raises(PusherConnectionError) as caught:
        client.trigger("secure", "e", "x")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert (caught.value.status, caught.value.retryable) == (None, True)


def test_tls_host_name_is_checked(tls_soketi):  # noqa: F811
    server, ca_path = tls_soketi
    trusted = HTTPTransport(ssl_context=ssl.create_default_context(cafile=str(ca_path)))
    with tls_client(server, trusted, host="127.0.0.2") as client, pytest.raises(PusherConnectionError):
        client.trigger("secure", "e", "x")


# -- HTTP proxy ---------------------------------------------------------------------------------


def test_http_through_a_proxy(soketi, subscriber):
    with ForwardProxy() as proxy:
        transport = HTTPTransport(proxy=f"http://user:p%40ss@127.0.0.1:{proxy.port}")
        with Pusher.from_url(soketi.url, transport=transport) as client:
            subscriber.subscribe("proxied")
            client.trigger("proxied", "e", "via proxy")
            assert subscriber.event("e", "proxied")["data"] == "via proxy"
            client.trigger("proxied", "e", "again")
            assert subscriber.event("e", "proxied")["data"] == "again"
    method, target, authorization = proxy.seen[0]
    assert method == "POST"
    assert target.startswith(f"http://127.0.0.1:{soketi.port}/apps/{soketi.app_id}/events?")
    assert authorization == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert len(proxy.seen) == 2


def test_https_through_a_proxy_tunnel(tls_soketi, tls_subscriber):  # noqa: F811
    server, ca_path = tls_soketi
    with ForwardProxy() as proxy:
        transport = HTTPTransport(
            proxy=f"http://127.0.0.1:{proxy.port}",
            ssl_context=ssl.create_default_context(cafile=str(ca_path)),
        )
        with tls_client(server, transport) as client:
            tls_subscriber.subscribe("tunnelled")
            client.trigger("tunnelled", "e", "through CONNECT")
            assert tls_subscriber.event("e", "tunnelled")["data"] == "through CONNECT"
    assert proxy.seen == [("CONNECT", f"localhost:{server.port}", None)]


def test_proxy_url_must_be_http():
    with pytest.raises(PusherValueError, match="proxy must be an http://host:port URL"):
        HTTPTransport(proxy="socks5://127.0.0.1:1080")


def wait_until(condition, seconds: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (for something that must happen)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize(("host", "target"), [("pusher.example", "pusher.example:443"), ("::1", "[::1]:443")])
def test_a_refused_connect_closes_its_socket(host, target):
    refusal = Raw(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", keep_open=True)
    with RawReplyServer([refusal]) as proxy:
        transport = HTTPTransport(proxy=f"http://127.0.0.1:{proxy.port}")
        client = Pusher("1", "key", "secret", host=host, transport=transport)
        with pytest.raises(PusherConnectionError, match="refused CONNECT") as caught:
            client.trigger("c", "e", "x")
        assert (proxy.requests[0].method, proxy.requests[0].target) == ("CONNECT", target)
        assert wait_until(lambda: proxy.open_connections == 0), "the refused tunnel's socket is still open"
        assert caught.value.retryable
