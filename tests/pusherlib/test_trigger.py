"""Triggering events against soketi, with real websocket subscribers on the receiving end."""

from __future__ import annotations

import datetime
import json

import pytest

from pusherlib import Pusher, PusherValueError
from tests.support.fault_server import FaultServer, Reply
from tests.support.soketi import unique
from tests.support.subscriber import Subscriber


def assert_not_received(subscriber: Subscriber, pusher: Pusher, channel: str, event: str) -> None:
    """Nothing named ``event`` arrived on ``channel`` before a marker triggered now (one
    connection delivers in order, so no waiting is needed)."""
    pusher.trigger(channel, "marker", "m")
    message = subscriber.wait_for(lambda m: m.get("channel") == channel and m["event"] in (event, "marker"))
    assert message["event"] == "marker", f"{event} arrived: {message}"


def test_public_event_arrives(pusher, subscriber):
    channel = unique("public-")
    subscriber.subscribe(channel)
    pusher.trigger(channel, "greeting", {"message": "hello", "n": [1, 2.5, None, True]})
    received = subscriber.event("greeting", channel)
    assert json.loads(received["data"]) == {"message": "hello", "n": [1, 2.5, None, True]}


def test_data_is_sent_as_the_official_library_encodes_it(pusher, subscriber):
    channel = unique("same-json-")
    subscriber.subscribe(channel)
    data = {"text": "héllo ✓ \U0001f600", "nested": {"a": [1, {"b": None}]}}
    pusher.trigger(channel, "e", data)
    assert subscriber.event("e", channel)["data"] == json.dumps(data, ensure_ascii=False)


def test_str_data_is_sent_as_it_is(pusher, subscriber):
    channel = unique("text-")
    subscriber.subscribe(channel)
    for text in ("plain text", '{"already": "json"}', "ünïcödé"):
        pusher.trigger(channel, "e", text)
        assert subscriber.event("e", channel)["data"] == text


def test_several_channels(pusher, subscriber):
    channels = [unique("multi-a-"), unique("multi-b-"), unique("multi-c-")]
    for channel in channels:
        subscriber.subscribe(channel)
    pusher.trigger(channels, "fan-out", {"to": "all"})
    for channel in channels:
        assert json.loads(subscriber.event("fan-out", channel)["data"]) == {"to": "all"}


def test_socket_id_excludes_that_subscriber_only(pusher, subscriber, other_subscriber):
    channel = unique("exclusion-")
    subscriber.subscribe(channel)
    other_subscriber.subscribe(channel)
    pusher.trigger(channel, "news", {"n": 1}, socket_id=subscriber.socket_id)
    assert json.loads(other_subscriber.event("news", channel)["data"]) == {"n": 1}
    assert_not_received(subscriber, pusher, channel, "news")


def test_trigger_with_info(pusher, subscriber):
    channel = unique("info-")
    subscriber.subscribe(channel)
    pusher.trigger(channel, "e", "x", info=["subscription_count"])
    assert subscriber.event("e", channel)["data"] == "x"


def test_trigger_with_info_sends_it_and_returns_pusher_s_channel_attributes():
    """soketi ignores ``info``: a server answering as Pusher documents shows what is sent
    and that the channels' attributes come back as they were answered."""
    documented = {"channels": {"info-x": {"subscription_count": 2}}}
    with (
        FaultServer(default=Reply.json(200, documented)) as server,
        Pusher.from_url(server.pusher_url) as client,
    ):
        assert client.trigger("info-x", "e", "x", info=["subscription_count", "user_count"]) == documented
        assert (
            client.trigger_batch([{"channel": "info-x", "name": "e", "data": "x", "info": "user_count"}])
            == documented
        )
    trigger, batch = (json.loads(request.body) for request in server.requests)
    assert trigger["info"] == "subscription_count,user_count"
    assert batch["batch"][0]["info"] == "user_count"


def test_batch_of_ten_with_info_and_exclusion(pusher, subscriber, other_subscriber):
    channels = [unique("batch-a-"), unique("batch-b-")]
    for channel in channels:
        subscriber.subscribe(channel)
        other_subscriber.subscribe(channel)
    events = [
        {"channel": channels[i % 2], "name": "item", "data": {"i": i}, "info": "subscription_count"}
        for i in range(9)
    ]
    events.append(
        {"channel": channels[0], "name": "private-note", "data": "x", "socket_id": subscriber.socket_id}
    )
    pusher.trigger_batch(events)
    for i in range(9):
        received = subscriber.event("item", channels[i % 2])
        assert json.loads(received["data"]) == {"i": i}  # in order, per channel
    assert other_subscriber.event("private-note", channels[0])["data"] == "x"
    assert_not_received(subscriber, pusher, channels[0], "private-note")


def test_ten_kilobytes_accepted_and_one_more_byte_refused(pusher, subscriber):
    channel = unique("edge-")
    subscriber.subscribe(channel)
    pusher.trigger(channel, "big", "x" * 10240)
    assert subscriber.event("big", channel)["data"] == "x" * 10240
    pusher.trigger(channel, "big-utf8", "é" * 5120)
    assert subscriber.event("big-utf8", channel)["data"] == "é" * 5120
    with pytest.raises(PusherValueError, match="10241 bytes; at most 10240"):
        pusher.trigger(channel, "too-big", "x" * 10241)
    with pytest.raises(PusherValueError, match="10241 bytes"):
        pusher.trigger(channel, "too-big", "é" * 5120 + "x")
    assert_not_received(subscriber, pusher, channel, "too-big")


def test_json_encoder_handles_datetimes(soketi, subscriber):
    class DateTimeEncoder(json.JSONEncoder):
        def default(self, o):
            if isinstance(o, datetime.datetime):
                return o.isoformat()
            return super().default(o)

    channel = unique("encoder-")
    subscriber.subscribe(channel)
    with Pusher.from_url(soketi.url, json_encoder=DateTimeEncoder) as client:
        client.trigger(channel, "at", {"when": datetime.datetime(2024, 5, 6, 7, 8, 9)})
    assert json.loads(subscriber.event("at", channel)["data"]) == {"when": "2024-05-06T07:08:09"}


def test_send_to_user_reaches_only_that_user(pusher, subscriber, other_subscriber):
    alice, bob = unique("alice-"), unique("bob-")
    assert (
        subscriber.signin(pusher.authenticate_user(subscriber.socket_id, {"id": alice}))["event"]
        == "pusher:signin_success"
    )
    assert (
        other_subscriber.signin(pusher.authenticate_user(other_subscriber.socket_id, {"id": bob}))["event"]
        == "pusher:signin_success"
    )
    pusher.send_to_user(alice, "direct", {"for": "alice"})
    received = subscriber.event("direct", f"#server-to-user-{alice}")
    assert json.loads(received["data"]) == {"for": "alice"}
    pusher.send_to_user(bob, "marker", "m")
    assert other_subscriber.wait_for(lambda m: m["event"] in ("direct", "marker"))["event"] == "marker"
