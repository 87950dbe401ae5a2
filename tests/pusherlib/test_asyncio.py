"""AsyncioTransport on asyncio's own event loop and on uvloop: against soketi, and against
fault servers for what soketi cannot do (keep-alive, resends, slow and endless answers)."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import ssl
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import uvloop

from pusherlib import (
    Pusher,
    PusherBadAuth,
    PusherConnectionError,
    PusherTimeout,
    PusherTypeError,
    PusherValueError,
)
from pusherlib.errors import is_permanent
from pusherlib.transports.asyncio import AsyncioTransport
from tests.support.fault_server import Close, FaultServer, Reply, Reset
from tests.support.raw_replies import (
    DRIPPED,
    ENDLESS_ANSWERS,
    MALFORMED_ANSWERS,
    READABLE_ANSWERS,
    RawReplyServer,
)
from tests.support.soketi import SOKETI_TRIGGERED, unique
from tests.support.tls import tls_client, tls_soketi  # noqa: F401 (a fixture)

OK = Reply.json(200, {"ok": True})
Run = Callable[[Callable[[AsyncioTransport], Awaitable[Any]]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request) -> Run:
    """Run ``main(transport)`` on a new event loop of each kind with a fresh transport,
    closed afterwards; the loop must end without warning about unclosed transports or loops."""

    def run_main(main: Callable[[AsyncioTransport], Awaitable[Any]], **options: Any) -> Any:
        async def closing() -> Any:
            transport = AsyncioTransport(**options)
            try:
                return await main(transport)
            finally:
                await transport.aclose()

        runner: Callable[[Coroutine[Any, Any, Any]], Any] = (
            asyncio.run if request.param == "asyncio" else uvloop.run
        )
        gc.collect()  # what earlier tests left is not this run's
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            result = runner(closing())
            gc.collect()
        leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        # The transport never holds a bare socket (asyncio wraps each in a transport, and closes
        # it when connecting fails): a bare one is another test's garbage, freed meanwhile.
        assert [leak for leak in leaks if not leak.startswith("unclosed <socket.socket")] == []
        return result

    return run_main


def client_for(server: FaultServer, transport: AsyncioTransport, timeout: float = 5) -> Pusher:
    return Pusher.from_url(server.pusher_url, timeout=timeout, transport=transport)


async def wait_until(condition: Callable[[], bool], seconds: float = 5) -> None:
    give_up = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < give_up, "condition not met in time"
        await asyncio.sleep(0.01)


# -- against soketi --------------------------------------------------------------------------------


def test_concurrent_triggers_are_delivered(run, soketi, subscriber):
    channel = unique("asyncio-")
    subscriber.subscribe(channel)

    async def main(transport):
        client = Pusher.from_url(soketi.url, transport=transport)
        first = await client.trigger_async(channel, "n", {"n": 0})
        rest = await asyncio.gather(*(client.trigger_async(channel, "n", {"n": n}) for n in range(1, 50)))
        return [first, *rest], await client.channel_info_async(channel)

    answers, info = run(main)
    assert answers == [SOKETI_TRIGGERED] * 50
    assert info["occupied"] is True
    received = {json.loads(subscriber.event("n", channel)["data"])["n"] for _ in range(50)}
    assert received == set(range(50))


def test_errors_are_pusher_errors(run, soketi):
    async def main(transport):
        wrong = Pusher.from_url(soketi.url.replace(f":{soketi.secret}@", ":wrong@"), transport=transport)
        with pytest.raises(PusherBadAuth):
            await wrong.trigger_async("c", "e", "x")

    run(main)


def test_blocking_calls_are_refused(soketi):
    client = Pusher.from_url(soketi.url, transport=AsyncioTransport())
    with pytest.raises(PusherTypeError, match=r"await pusher\.trigger_async"):
        client.trigger("c", "e", "x")


@pytest.mark.parametrize(
    "options",
    [
        {"keep_alive": float("nan")},
        {"max_connections": 0},
        {"max_idle_per_host": -1},
        {"max_response_bytes": 1.5},
    ],
)
def test_bad_options_are_refused(options):
    with pytest.raises(PusherValueError):
        AsyncioTransport(**options)


def test_tls_with_a_trusted_certificate(run, tls_soketi):  # noqa: F811
    server, ca_path = tls_soketi

    async def main(transport):
        client = tls_client(server, transport)
        return [await client.trigger_async("secure", "e", {"n": n}) for n in range(2)]

    assert run(main, ssl_context=ssl.create_default_context(cafile=str(ca_path))) == [SOKETI_TRIGGERED] * 2


def test_tls_certificate_not_trusted_by_default(run, tls_soketi):  # noqa: F811
    server, _ = tls_soketi

    async def main(transport):
        with pytest.raises(PusherConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await tls_client(server, transport).trigger_async("secure", "e", "x")

    run(main)


# -- connections ------------------------------------------------------------------------------------


def test_kept_alive_connections_are_reused(run):
    async def main(transport):
        client = client_for(server, transport)
        for _ in range(5):
            assert await client.trigger_async("c", "e", "x") == {"ok": True}
        assert server.connections == 1
        await asyncio.gather(*(client.trigger_async("c", "e", "x") for _ in range(6)))
        await asyncio.gather(*(client.trigger_async("c", "e", "x") for _ in range(6)))
        assert server.connections == 6

    with FaultServer(default=OK) as server:
        run(main)
        assert server.request_count == 17


def test_a_connection_the_answer_closes_is_not_reused(run):
    closing = Reply.json(200, {"ok": True}, headers=(("Connection", "close"),))

    async def main(transport):
        client = client_for(server, transport)
        for _ in range(3):
            assert await client.trigger_async("c", "e", "x") == {"ok": True}

    with FaultServer(default=closing) as server:  # the server itself keeps it open
        run(main)
        assert server.connections == 3


def test_idle_connections_expire_and_are_bounded(run):
    async def main(transport):
        client = client_for(server, transport)
        await client.trigger_async("c", "e", "x")
        await asyncio.sleep(0.3)  # over keep_alive: a new connection
        await client.trigger_async("c", "e", "x")
        assert server.connections == 2
        await asyncio.gather(*(client.trigger_async("c", "e", "x") for _ in range(5)))
        await wait_until(lambda: server.open_connections == 2)  # max_idle_per_host

    with FaultServer(default=Reply.json(200, {}, delay=0.05)) as server:
        run(main, keep_alive=0.2, max_idle_per_host=2)


def test_max_connections_per_host(run):
    async def main(transport):
        client = client_for(server, transport)
        answers = await asyncio.gather(*(client.trigger_async("c", "e", "x") for _ in range(12)))
        assert answers == [{}] * 12

    with FaultServer(default=Reply.json(200, {}, delay=0.05)) as server:
        run(main, max_connections=3)
        assert (server.max_in_flight, server.connections) == (3, 3)


def test_waiting_for_a_connection_counts_in_the_deadline(run):
    async def main(transport):
        holding = client_for(server, transport, timeout=2)  # holds the one connection 2 s
        waiting = client_for(server, transport, timeout=0.3)
        first, second = await asyncio.gather(
            holding.trigger_async("c", "e", "x"), waiting.trigger_async("c", "e", "x"), return_exceptions=True
        )
        assert isinstance(second, PusherTimeout) and "no connection" in str(
            second
        )  # its deadline ran out waiting
        assert isinstance(first, PusherTimeout)
        assert server.request_count == 1

    with FaultServer(default=Reply.json(200, {}, delay=5)) as server:
        run(main, max_connections=1)


def test_an_idle_connection_the_server_closed_is_not_used(run):
    async def main(transport):
        client = client_for(server, transport)
        assert await client.trigger_async("c", "e", "x") == {"n": 1}
        await wait_until(lambda: server.open_connections == 0)
        assert await client.trigger_async("c", "e", "x") == {"ok": True}

    with FaultServer([Reply.json(200, {"n": 1}, close_after=True)], default=OK) as server:
        run(main)
        assert (server.request_count, server.connections) == (2, 2)


# -- sent again at most once --------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [Close(), Reset()], ids=["close", "reset"])
def test_a_stale_connection_is_retried_once_on_a_fresh_one(run, failure):
    async def main(transport):
        client = client_for(server, transport)
        assert await client.trigger_async("c", "e", "x") == {"n": 1}
        assert await client.trigger_async("c", "e", "again") == {"n": 2}

    with FaultServer([Reply.json(200, {"n": 1}), failure, Reply.json(200, {"n": 2})]) as server:
        run(main)
        assert (server.request_count, server.connections) == (3, 2)
        assert server.requests[1].body == server.requests[2].body


@pytest.mark.parametrize("failure", [Close(), Reset()], ids=["close", "reset"])
def test_a_post_reaches_a_server_that_never_answers_twice_at_most(run, failure):
    async def main(transport):
        client = client_for(server, transport)
        assert await client.trigger_async("c", "e", "x") == {"ok": True}
        with pytest.raises(PusherConnectionError, match="closed the connection without answering") as caught:
            await client.trigger_async("c", "e", "once")
        assert caught.value.retryable

    with FaultServer([OK], default=failure) as server:
        run(main)
        assert [request.body.count(b"once") for request in server.requests[1:]] == [1, 1]


def test_a_fresh_connection_that_fails_is_not_retried(run):
    async def main(transport):
        with pytest.raises(PusherConnectionError, match="closed the connection without answering"):
            await client_for(server, transport).trigger_async("c", "e", "x")

    with FaultServer([Close()], default=OK) as server:
        run(main)
        assert server.request_count == 1


# -- bounded answers and deadlines ---------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "carried"), READABLE_ANSWERS.values(), ids=READABLE_ANSWERS)
def test_answers_read_as_they_come(run, answer, carried):
    async def main(transport):
        client = client_for(server, transport)
        assert await client.trigger_async("c", "e", "x") == carried
        assert await client.trigger_async("c", "e", "x") == {"ok": True}

    with RawReplyServer([answer], default=OK) as server:
        run(main)
        assert server.connections == (1 if answer.keep_open else 2)


@pytest.mark.parametrize(("answer", "message"), MALFORMED_ANSWERS.values(), ids=MALFORMED_ANSWERS)
def test_malformed_answers_fail_with_what_is_wrong(run, answer, message):
    async def main(transport):
        client = client_for(server, transport)
        with pytest.raises(PusherConnectionError, match=message) as caught:
            await client.trigger_async("c", "e", "x")
        assert (caught.value.status, caught.value.retryable) == (None, True)
        assert await client.trigger_async("c", "e", "x") == {}

    with RawReplyServer([answer]) as server:
        run(main)
        assert server.connections == 2


def test_a_dripped_answer_is_bounded_by_the_deadline(run):
    async def main(transport):
        started = time.monotonic()
        with pytest.raises(PusherTimeout):
            await client_for(server, transport, timeout=1).trigger_async("c", "e", "x")
        assert time.monotonic() - started < 1.5

    with RawReplyServer([DRIPPED]) as server:
        run(main)
        assert 0 < server.bytes_sent < DRIPPED.size


@pytest.mark.parametrize(("answer", "message"), ENDLESS_ANSWERS.values(), ids=ENDLESS_ANSWERS)
def test_endless_answers_are_bounded(run, answer, message):
    async def main(transport):
        with pytest.raises(PusherConnectionError, match=message):
            await client_for(server, transport).trigger_async("c", "e", "x")

    with RawReplyServer([answer]) as server:
        run(main)
        assert server.bytes_sent < answer.size


def test_max_response_bytes(run):
    async def main(transport):
        client = client_for(server, transport)
        with pytest.raises(PusherConnectionError, match="over 10"):
            await client.trigger_async("c", "e", "x")

    with FaultServer(default=Reply.json(200, {"long": "x" * 20})) as server:
        run(main, max_response_bytes=10)


def test_connection_refused(run):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    async def main(transport):
        client = Pusher("1", "key", "secret", host="127.0.0.1", port=port, ssl=False, transport=transport)
        with pytest.raises(PusherConnectionError, match=f"cannot connect to 127.0.0.1:{port}") as caught:
            await client.trigger_async("c", "e", "x")
        assert caught.value.retryable

    run(main)


def test_a_connect_that_hangs_is_bounded_by_the_deadline(run):
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        fillers = [socket.socket() for _ in range(3)]  # fill the accept queue: later SYNs are dropped
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())

        async def main(transport):
            port = full.getsockname()[1]
            client = Pusher(
                "1", "key", "secret", host="127.0.0.1", port=port, ssl=False, timeout=0.3, transport=transport
            )
            started = time.monotonic()
            with pytest.raises(PusherTimeout, match=r"connecting to 127\.0\.0\.1:\d+ timed out"):
                await client.trigger_async("c", "e", "x")
            assert time.monotonic() - started < 1

        try:
            run(main)
        finally:
            for filler in fillers:
                filler.close()


def test_ipv6_literal_and_idna_names(run):
    async def main(transport):
        client = Pusher("1", "key", "secret", host="::1", port=server.port, ssl=False, transport=transport)
        assert await client.trigger_async("c", "e", "x") == {"ok": True}
        name = "\u043f\u0440\u0438\u043c\u0435\u0440.invalid"
        idna = Pusher("1", "key", "secret", host=name, ssl=False, transport=transport)
        with pytest.raises(PusherConnectionError) as caught:  # no such host (or a lookup timing out)
            await idna.trigger_async("c", "e", "x")
        assert not is_permanent(caught.value)

    with FaultServer(default=OK, host="::1") as server:
        run(main)
        assert server.requests[0].headers["host"] == f"[::1]:{server.port}"


# -- cancelling and closing ---------------------------------------------------------------------------


def test_cancelling_closes_the_connection_and_frees_its_turn(run):
    async def main(transport):
        client = client_for(server, transport)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.trigger_async("c", "e", "slow")
        waiting = asyncio.ensure_future(client.trigger_async("c", "e", "x"))
        blocked = asyncio.ensure_future(client.trigger_async("c", "e", "x"))
        await asyncio.sleep(0.05)
        blocked.cancel()  # cancelled while waiting for its turn
        assert await waiting == {"ok": True}
        assert await client.trigger_async("c", "e", "x") == {"ok": True}
        await wait_until(lambda: server.open_connections == 1)  # the cancelled one is closed

    script = [Reply.json(200, {}, delay=1), Reply.json(200, {"ok": True}, delay=0.2)]
    with FaultServer(script, default=OK) as server:
        run(main, max_connections=1)
        assert server.request_count == 3


def test_aclose_closes_idle_connections(run):
    async def main(transport):
        client = client_for(server, transport)
        await asyncio.gather(*(client.trigger_async("c", "e", "x") for _ in range(3)))
        assert server.open_connections == 3
        await transport.aclose()
        await wait_until(lambda: server.open_connections == 0)
        assert await client.trigger_async("c", "e", "x") == {"ok": True}  # usable again

    with FaultServer(default=Reply.json(200, {"ok": True}, delay=0.05)) as server:
        run(main)


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the first loop's connection is left open
def test_one_transport_on_two_loops_in_turn():
    transport = AsyncioTransport()

    async def main():
        return await client_for(server, transport, timeout=2).trigger_async("c", "e", "x")

    async def on_the_second_loop():
        try:
            return await main()
        finally:
            await transport.aclose()

    first = asyncio.new_event_loop()
    with FaultServer(default=OK) as server:
        try:
            assert first.run_until_complete(main()) == {"ok": True}  # its connection stays idle
            assert uvloop.run(on_the_second_loop()) == {"ok": True}
            assert server.connections == 2  # not the first loop's, which was closed
        finally:
            first.run_until_complete(asyncio.sleep(0))  # the closed connection is let go
            first.close()
