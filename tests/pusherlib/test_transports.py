"""The other transports against soketi: App Engine urlfetch (through the testbed's stub,
which makes real HTTP calls) with legacy NDB futures, and google-cloud-ndb futures (the
asyncio transport is in test_asyncio.py)."""

from __future__ import annotations

import json

import pytest
from google.appengine.ext import ndb as legacy_ndb
from google.appengine.ext import testbed
from google.auth.credentials import AnonymousCredentials
from google.cloud import ndb
from websockets.exceptions import ConnectionClosed

from pusherlib import (
    Pusher,
    PusherBadAuth,
    PusherServerError,
    PusherTimeout,
    PusherValueError,
)
from pusherlib.transports.urlfetch import UrlfetchTransport
from tests.support.fault_server import FaultServer, Reply
from tests.support.soketi import SOKETI_TRIGGERED, unique


def wrong_secret(soketi) -> str:
    """soketi's PUSHER_URL with another secret."""
    return soketi.url.replace(f":{soketi.secret}@", ":wrong@")


def received_numbers(subscriber, channel: str, count: int) -> set[int]:
    return {json.loads(subscriber.event("n", channel)["data"])["n"] for _ in range(count)}


# -- App Engine urlfetch ------------------------------------------------------------------------


@pytest.fixture
def app_engine():
    bed = testbed.Testbed()
    bed.activate()
    bed.init_urlfetch_stub()
    yield bed
    bed.deactivate()


@pytest.fixture
def urlfetch_pusher(soketi, app_engine):
    return Pusher.from_url(soketi.url, transport=UrlfetchTransport())


def test_urlfetch_trigger_and_queries(urlfetch_pusher, subscriber):
    channel = unique("urlfetch-")
    subscriber.subscribe(channel)
    assert urlfetch_pusher.trigger(channel, "n", {"n": 1}) == SOKETI_TRIGGERED
    assert received_numbers(subscriber, channel, 1) == {1}
    assert channel in urlfetch_pusher.channels_info()["channels"]
    assert urlfetch_pusher.channel_info(channel)["occupied"] is True


def test_urlfetch_errors(soketi, app_engine):
    with pytest.raises(PusherBadAuth):
        Pusher.from_url(wrong_secret(soketi), transport=UrlfetchTransport()).trigger("c", "e", "x")
    with FaultServer([Reply(503), Reply(200, delay=5)]) as fault:
        client = Pusher.from_url(fault.pusher_url, timeout=0.5, transport=UrlfetchTransport())
        with pytest.raises(PusherServerError) as caught:
            client.trigger("c", "e", "x")
        assert (caught.value.status, caught.value.retryable) == (503, True)
        with pytest.raises(PusherTimeout) as caught:
            client.trigger("c", "e", "x")
        assert (caught.value.status, caught.value.retryable) == (None, True)


def test_legacy_ndb_futures_in_a_tasklet(urlfetch_pusher, subscriber):
    channel = unique("legacy-ndb-")
    subscriber.subscribe(channel)

    @legacy_ndb.tasklet
    def trigger_many():
        answers = yield [urlfetch_pusher.trigger_async(channel, "n", {"n": n}) for n in range(20)]
        info = yield urlfetch_pusher.channel_info_async(channel)
        raise legacy_ndb.Return((answers, info))

    future = trigger_many()
    assert isinstance(future, legacy_ndb.Future)
    answers, info = future.get_result()
    assert answers == [SOKETI_TRIGGERED] * 20
    assert info["occupied"] is True
    assert received_numbers(subscriber, channel, 20) == set(range(20))


def test_legacy_ndb_future_carries_the_error(soketi, app_engine):
    future = Pusher.from_url(wrong_secret(soketi), transport=UrlfetchTransport()).trigger_async("c", "e", "x")
    assert isinstance(future, legacy_ndb.Future)
    with pytest.raises(PusherBadAuth):
        future.get_result()


# -- google-cloud-ndb futures ---------------------------------------------------------------------


@pytest.fixture
def ndb_context():
    with ndb.Client(project="test", credentials=AnonymousCredentials()).context() as context:
        yield context


def test_ndb_futures_many_in_flight_arrive(pusher, subscriber, ndb_context):
    channel = unique("cloud-ndb-")
    subscriber.subscribe(channel)

    @ndb.tasklet
    def trigger_many():
        answers = yield [pusher.trigger_async(channel, "n", {"n": n}) for n in range(40)]
        return answers

    answers = trigger_many().result()
    assert list(answers) == [SOKETI_TRIGGERED] * 40  # a tasklet yields a tuple
    assert received_numbers(subscriber, channel, 40) == set(range(40))


def test_ndb_futures_run_concurrently(ndb_context):
    with FaultServer(default=Reply.json(200, {"ok": True}, delay=0.3)) as fault:
        client = Pusher.from_url(fault.pusher_url)
        futures = [client.trigger_async("c", "e", str(n)) for n in range(6)]
        assert all(isinstance(future, ndb.Future) for future in futures)
        assert [future.result() for future in futures] == [{"ok": True}] * 6
        client.close()
    assert fault.max_in_flight > 1


def test_every_async_twin(pusher, subscriber, ndb_context):
    channel, presence = unique("twins-"), unique("presence-twins-")
    user_id = unique("user-")
    subscriber.subscribe(channel)
    subscriber.subscribe(presence, pusher.authenticate(presence, subscriber.socket_id, {"user_id": user_id}))
    subscriber.signin(pusher.authenticate_user(subscriber.socket_id, {"id": user_id}))

    @ndb.tasklet
    def everything():
        yield pusher.trigger_batch_async([{"channel": channel, "name": "n", "data": {"n": 1}}])
        yield pusher.send_to_user_async(user_id, "direct", "hi")
        channels = yield pusher.channels_info_async(prefix_filter=channel)
        info = yield pusher.channel_info_async(presence, ["user_count"])
        users = yield pusher.users_info_async(presence)
        return channels, info, users

    channels, info, users = everything().result()
    assert list(channels["channels"]) == [channel]
    assert info["user_count"] == 1
    assert users == {"users": [{"id": user_id}]}
    assert received_numbers(subscriber, channel, 1) == {1}
    assert subscriber.event("direct", f"#server-to-user-{user_id}")["data"] == "hi"
    pusher.terminate_user_connections_async(user_id).result()
    with pytest.raises(ConnectionClosed):
        subscriber.wait_for(lambda message: False)


def test_async_twins_validate_at_once(pusher, ndb_context):
    with pytest.raises(PusherValueError, match="invalid channel name"):
        pusher.trigger_async("bad channel", "e", "x")
