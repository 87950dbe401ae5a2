"""Rules every transport keeps, tested on each of the three (the blocking HTTPTransport, the
AsyncioTransport, google-cloud-ndb futures through the NdbBridge or a thread):

* one deadline rule: a request waits for its turn (a connection, or a thread) at most the
  pool timeout, then fails unsent (PusherNotSent, and the server never saw it); once it has
  its turn, its exchange has the request's whole ``timeout``;
* an answer cut short by the server on a reused connection is never sent again;
* a pooled connection is reused with descriptors past 1,023 open (no ``select.select``);
* a POST with an empty body carries no ``body_md5``.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import ndb

from pusherlib import (
    Pusher,
    PusherConnectionError,
    PusherNotSent,
    PusherTimeout,
    PusherValueError,
)
from pusherlib.signing import sign_request
from pusherlib.transports.asyncio import AsyncioTransport
from pusherlib.transports.http import HTTPTransport
from pusherlib.transports.ndb import ThreadedNdbBridge
from tests.support.fault_server import Reply
from tests.support.raw_replies import Raw, RawReplyServer

KINDS = ["asyncio", "ndb-bridge", "ndb-thread"]
Outcome = tuple[Any, float]  # what a trigger returned (or raised), and when, after it began


class OneThreadTransport(HTTPTransport):
    """The blocking transport with futures from a single thread: a request waits for it."""

    def request_async(self, request: Any, read: Callable[[Any], Any]) -> Any:
        if self._ndb_bridge is None:
            self._ndb_bridge = ThreadedNdbBridge(self.send, max_workers=1, pool_timeout=self.pool_timeout)
        return self._ndb_bridge.submit(request, read)


@pytest.fixture(scope="module")
def ndb_client() -> ndb.Client:
    return ndb.Client(project="test", credentials=AnonymousCredentials())


def client_for(server: RawReplyServer, transport: Any, timeout: float) -> Pusher:
    return Pusher(
        "1",
        "key",
        "secret",
        host=server.host,
        port=server.port,
        ssl=False,
        timeout=timeout,
        transport=transport,
    )


def trigger_concurrently(
    kind: str,
    server: RawReplyServer,
    timeouts: list[float],
    ndb_client: ndb.Client,
    pool_timeout: float | None,
) -> list[Outcome]:
    """Trigger once per timeout, in that order and all at once, on a transport of ``kind``
    with one connection (or thread) per host; each trigger's outcome and its time."""
    if kind == "asyncio":
        return asyncio.run(_on_asyncio(server, timeouts, pool_timeout))
    transport_type = HTTPTransport if kind == "ndb-bridge" else OneThreadTransport
    transport = transport_type(max_idle_per_host=1, pool_timeout=pool_timeout)
    outcomes: list[Outcome] = []
    try:
        with ndb_client.context():
            start = time.monotonic()
            futures = [
                client_for(server, transport, timeout).trigger_async("c", "e", "x") for timeout in timeouts
            ]
            done: dict[int, float] = {}
            for number, future in enumerate(futures):
                future.add_done_callback(
                    lambda _, number=number: done.setdefault(number, time.monotonic() - start)
                )
            for number, future in enumerate(futures):
                try:
                    outcomes.append((future.result(), done[number]))
                except Exception as exc:
                    outcomes.append((exc, done[number]))
    finally:
        transport.close()
    return outcomes


async def _on_asyncio(
    server: RawReplyServer, timeouts: list[float], pool_timeout: float | None
) -> list[Outcome]:
    transport = AsyncioTransport(max_connections=1, pool_timeout=pool_timeout)
    start = time.monotonic()

    async def timed(timeout: float) -> Outcome:
        try:
            return await client_for(server, transport, timeout).trigger_async(
                "c", "e", "x"
            ), time.monotonic() - start
        except Exception as exc:
            return exc, time.monotonic() - start

    try:
        return await asyncio.gather(*(timed(timeout) for timeout in timeouts))
    finally:
        await transport.aclose()


# -- one deadline rule: a bounded wait for a turn, then the whole timeout for the exchange ------


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_that_waited_for_its_turn_has_its_whole_timeout(kind, ndb_client):
    """The first request holds the connection 0.6 s; the second, timeout 1 s, is answered
    0.8 s after it is written. It must succeed: with the deadline counted from before the
    wait, it timed out after the server had acted (a retry would send it twice)."""
    with RawReplyServer(
        [Reply.json(200, {"n": 1}, delay=0.6), Reply.json(200, {"n": 2}, delay=0.8)]
    ) as server:
        (first, _), (second, took) = trigger_concurrently(kind, server, [30, 1], ndb_client, pool_timeout=5)
        assert (first, second) == ({"n": 1}, {"n": 2})
        assert server.request_count == 2
        assert took < 0.6 + 1 + 1  # wait + whole timeout, with slack


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_whose_turn_does_not_come_fails_unsent(kind, ndb_client):
    with RawReplyServer([Reply.json(200, {"n": 1}, delay=2)]) as server:
        (first, _), (second, took) = trigger_concurrently(kind, server, [30, 5], ndb_client, pool_timeout=0.3)
        assert first == {"n": 1}
        assert isinstance(second, PusherNotSent) and str(second).startswith("not sent: no connection")
        assert second.retryable
        assert server.request_count == 1  # never written
        assert took < 1.5  # gave up at the pool timeout, not at its own 5 s, nor the holder's 2 s


@pytest.mark.parametrize("kind", KINDS)
def test_an_exchange_that_started_is_bounded_by_the_timeout(kind, ndb_client):
    with RawReplyServer([Reply.json(200, {"n": 1}, delay=0.6), Reply.json(200, {}, delay=5)]) as server:
        (first, _), (second, took) = trigger_concurrently(kind, server, [30, 1], ndb_client, pool_timeout=5)
        assert first == {"n": 1}
        assert isinstance(second, PusherTimeout) and not isinstance(second, PusherNotSent)
        assert server.request_count == 2  # it was sent: a timeout, not "not sent"
        assert 1 <= took < 0.6 + 1 + 1


def test_the_pool_timeout_defaults_to_the_request_timeout_and_is_checked():
    assert AsyncioTransport().pool_timeout is None
    for bad in (-1, float("inf"), float("nan")):
        with pytest.raises(PusherValueError, match="pool_timeout"):
            AsyncioTransport(pool_timeout=bad)
        with pytest.raises(PusherValueError, match="pool_timeout"):
            HTTPTransport(pool_timeout=bad)


# -- part of an answer, then the connection ends: never sent again -------------------------------


class CutShortServer(RawReplyServer):
    """Raw steps end with a TCP reset when ``reset`` (else a close), a moment after their
    bytes were written (so the client has read them first)."""

    reset = True

    def _perform(self, step: Any, sock: socket.socket) -> bool:
        keep_open = super()._perform(step, sock)
        if isinstance(step, Raw) and self.reset:
            time.sleep(0.2)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return keep_open


PARTIAL = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"par'


def trigger_twice(kind: str, server: RawReplyServer, ndb_client: ndb.Client) -> list[Any]:
    """Two triggers one after the other on one transport of ``kind`` (the second on the
    connection the first kept alive), their outcomes."""
    outcomes: list[Any] = []
    if kind == "http":
        client = client_for(server, HTTPTransport(), timeout=5)
        for _ in range(2):
            try:
                outcomes.append(client.trigger("c", "e", "x"))
            except Exception as exc:
                outcomes.append(exc)
        client.close()
    elif kind == "asyncio":

        async def main() -> None:
            transport = AsyncioTransport()
            client = client_for(server, transport, timeout=5)
            for _ in range(2):
                try:
                    outcomes.append(await client.trigger_async("c", "e", "x"))
                except Exception as exc:
                    outcomes.append(exc)
            await transport.aclose()

        asyncio.run(main())
    else:
        client = client_for(server, HTTPTransport(), timeout=5)
        with ndb_client.context():
            for _ in range(2):
                try:
                    outcomes.append(client.trigger_async("c", "e", "x").result())
                except Exception as exc:
                    outcomes.append(exc)
        client.close()
    return outcomes


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "close"])
@pytest.mark.parametrize("kind", ["http", "asyncio", "ndb-bridge"])
def test_a_partial_answer_on_a_reused_connection_is_not_sent_again(kind, reset, ndb_client):
    with CutShortServer(
        [Reply.json(200, {"n": 1}), Raw(PARTIAL)], default=Reply.json(200, {"again": True})
    ) as server:
        server.reset = reset
        first, second = trigger_twice(kind, server, ndb_client)
        assert first == {"n": 1}
        assert isinstance(second, PusherConnectionError), second
        assert server.connections == 1  # the second went on the kept-alive connection
        assert server.request_count == 2  # and was not sent again on a fresh one


# -- descriptors past 1,023 ----------------------------------------------------------------------


@contextlib.contextmanager
def descriptors_past_1024() -> Iterator[None]:
    """Raise the soft limit on open files and hold 1,100 descriptors open meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if wanted < 1200:
        pytest.skip(f"the hard limit on open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    held: list[int] = []
    try:
        while len(held) < 1100:
            held.append(socket.socket().detach())
        yield
    finally:
        for fd in held:
            with contextlib.suppress(OSError):
                socket.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_pooled_connection_past_descriptor_1023_is_reused():
    with RawReplyServer(default=Reply.json(200, {"ok": True})) as server, descriptors_past_1024():
        transport = HTTPTransport()
        client = client_for(server, transport, timeout=5)
        assert client.trigger("c", "e", "x") == {"ok": True}
        key = ("http", server.host, server.port)
        assert transport.pool._idle[key][-1][1].fileno() > 1023
        assert client.trigger("c", "e", "x") == {"ok": True}
        client.close()
        assert (server.request_count, server.connections) == (2, 1)


# -- body_md5 only for a body ---------------------------------------------------------------------


def test_a_post_with_an_empty_body_has_no_body_md5():
    """Pusher's spec: ``body_md5`` goes with a non-empty body (as the official Node library
    sends it: ``if (request.body)``). soketi cannot judge this: it reads an empty body as
    ``{}`` and checks a signature over that body's MD5."""
    signed = sign_request("key", b"secret", "POST", "/apps/1/events", {}, b"", 1353088179)
    assert "body_md5" not in signed
    with_body = sign_request("key", b"secret", "POST", "/apps/1/events", {}, b"{}", 1353088179)
    assert with_body["body_md5"] == "99914b932bd37a50b983c5e7c90ae93b"
