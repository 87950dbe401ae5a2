"""Delivery guarantees of the default transport, for both of its engines: the blocking
``trigger`` and the NDB bridge's ``trigger_async`` futures.

Sent no more often than needed (a request goes again at most once, on a fresh connection,
and only when a reused one failed before answering), every wait bounded by the request's
deadline, every answer bounded, low-level failures as retryable PusherErrors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import ndb

from pusherlib import HTTPTransport, Pusher, PusherConnectionError, PusherTimeout, PusherValueError
from pusherlib.errors import is_permanent
from pusherlib.transports import Request, connections
from tests.support.fault_server import Close, FaultServer, Reply, Reset
from tests.support.raw_replies import DRIPPED, ENDLESS_ANSWERS, RawReplyServer

OK = Reply.json(200, {"ok": True})
POOLED = 8

Trigger = Callable[[Pusher, str], object]


@pytest.fixture(scope="module")
def ndb_client():
    return ndb.Client(project="test", credentials=AnonymousCredentials())


@pytest.fixture(params=["blocking", "ndb-bridge"])
def trigger(request, ndb_client) -> Iterator[Trigger]:
    """Send one event and return the answer, through one engine or the other."""
    if request.param == "blocking":
        yield lambda client, data: client.trigger("c", "e", data)
        return
    with ndb_client.context():
        yield lambda client, data: client.trigger_async("c", "e", data).result()


def client_for(server: FaultServer, **options) -> Pusher:
    return Pusher("1", "key", "secret", host=server.host, port=server.port, ssl=False, **options)


def fill_pool(client: Pusher, server: FaultServer, count: int) -> None:
    """Put ``count`` idle kept-alive connections to ``server`` in the client's pool."""
    transport = client.transport
    assert isinstance(transport, HTTPTransport)
    for _ in range(count):
        transport.pool.checkin(
            ("http", server.host, server.port), socket.create_connection((server.host, server.port))
        )
    assert transport.pool.idle_count(("http", server.host, server.port)) == count


# -- sent no more often than needed ----------------------------------------------------------------


@pytest.mark.parametrize("failure", [Close(), Reset()], ids=["close", "reset"])
def test_a_post_reaches_a_server_that_never_answers_twice_at_most(trigger, failure):
    with FaultServer(default=failure) as server:
        client = client_for(server)
        fill_pool(client, server, POOLED)
        with pytest.raises(PusherConnectionError) as caught:
            trigger(client, "once")
        assert not is_permanent(caught.value)
        assert [request.body.count(b"once") for request in server.requests] == [1, 1]  # reused, then fresh
        assert server.connections == POOLED + 1
        client.close()


def test_a_fresh_connection_that_fails_is_not_retried(trigger):
    with FaultServer([Close()], default=OK) as server:
        client = client_for(server)
        with pytest.raises(PusherConnectionError, match="closed the connection without answering"):
            trigger(client, "x")
        assert server.request_count == 1
        assert trigger(client, "sentinel") == {"ok": True}
        client.close()


def test_an_answer_that_broke_off_is_not_sent_again(trigger):
    with RawReplyServer([ENDLESS_ANSWERS["endless-body-until-close"][0]], default=OK) as server:
        client = client_for(server)
        fill_pool(client, server, 1)
        with pytest.raises(PusherConnectionError, match="over 1048576 bytes"):
            trigger(client, "x")
        assert server.request_count == 1
        client.close()


def test_idle_connections_expire_after_the_keep_alive_time(trigger):
    with FaultServer(default=OK) as server:
        kept = client_for(server)
        for n in range(3):
            trigger(kept, str(n))
        assert server.connections == 1
        expiring = client_for(server, transport=HTTPTransport(keep_alive=0))
        for n in range(3):
            trigger(expiring, str(n))
        assert server.connections == 1 + 3
        kept.close()
        expiring.close()


# -- every wait bounded --------------------------------------------------------------------


def test_timeout_is_a_deadline_for_a_dripped_answer(trigger):
    with RawReplyServer([DRIPPED], default=OK) as server:
        client = client_for(server, timeout=1)
        with pytest.raises(PusherTimeout):
            trigger(client, "x")
        assert server.bytes_sent < DRIPPED.size  # it gave up before the drip could end
        client.close()


@pytest.mark.parametrize(("answer", "message"), ENDLESS_ANSWERS.values(), ids=ENDLESS_ANSWERS)
def test_endless_answers_are_cut_off(trigger, answer, message):
    with RawReplyServer([answer], default=OK) as server:
        client = client_for(server, timeout=30)
        with pytest.raises(PusherConnectionError, match=message) as caught:
            trigger(client, "x")
        assert caught.value.retryable and not is_permanent(caught.value)
        assert server.bytes_sent < answer.size
        assert trigger(client, "sentinel") == {"ok": True}
        client.close()


def test_a_name_lookup_that_hangs_is_bounded(trigger, monkeypatch):
    release = threading.Event()
    real_lookup = connections.lookup

    def hanging_lookup(host: str, port: int):
        release.wait(30)
        return real_lookup(host, port)

    monkeypatch.setattr(connections, "lookup", hanging_lookup)
    client = Pusher("1", "key", "secret", host="pusher.example", port=80, ssl=False, timeout=0.5)
    try:
        with pytest.raises(PusherTimeout):
            trigger(client, "x")
    finally:
        release.set()
        client.close()


# -- low-level failures are retryable PusherErrors -------------------------------------------


def test_a_host_name_that_cannot_be_encoded(trigger):
    client = Pusher("1", "key", "secret", host="b\u00fccher" + "x" * 70 + ".example", ssl=False)
    with pytest.raises(PusherConnectionError, match="cannot be IDNA-encoded") as caught:
        trigger(client, "x")
    assert not is_permanent(caught.value)


def test_a_non_latin_1_host_name_is_idna_encoded(trigger):
    with FaultServer(default=OK) as server:
        client = client_for(server)
        client_for_name = Pusher(
            "1", "key", "secret", host="\u043f\u0440\u0438\u043c\u0435\u0440.invalid", ssl=False
        )
        with pytest.raises(PusherConnectionError) as caught:  # no such host: an error that is retried
            trigger(client_for_name, "x")
        assert not is_permanent(caught.value)
        assert trigger(client, "x") == {"ok": True}
        client.close()


def test_an_ipv6_literal_host_is_bracketed(trigger):
    with FaultServer(default=OK, host="::1") as server:
        client = client_for(server)
        assert trigger(client, "x") == {"ok": True}
        assert server.requests[0].headers["host"] == f"[::1]:{server.port}"
        client.close()


def test_a_header_value_that_is_not_latin_1_is_a_pusher_error(ndb_client):
    transport = HTTPTransport()
    request = Request("POST", "http", "127.0.0.1", 9, "/apps/1/events", b"{}", 1.0, (("X-Name", "\u20ac"),))
    with pytest.raises(PusherConnectionError, match="cannot be written"):
        transport.send(request)
    with ndb_client.context(), pytest.raises(PusherConnectionError, match="cannot be written"):
        transport.request_async(request, lambda response: response).result()


@pytest.mark.parametrize(
    "options",
    [
        {"keep_alive": float("nan")},
        {"keep_alive": -1},
        {"max_response_bytes": 0},
        {"max_response_bytes": 1.5},
    ],
)
def test_transport_limits_are_checked(options):
    with pytest.raises(PusherValueError):
        HTTPTransport(**options)
