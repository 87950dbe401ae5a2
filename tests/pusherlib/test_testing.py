"""``pusherlib.testing.RecordingTransport``: what users' own tests assert on, no network."""

from __future__ import annotations

import pytest

from pusherlib import Pusher, PusherRateLimited, PusherTimeout, PusherValueError, TriggerResult
from pusherlib.signing import sign_request
from pusherlib.testing import RecordingTransport


@pytest.fixture
def recorder():
    return RecordingTransport()


@pytest.fixture
def client(recorder):
    return Pusher("1", "key", "secret", transport=recorder)


def test_records_events_decoded(client, recorder):
    client.trigger(["orders", "audit"], "created", {"id": 42}, socket_id="1.2")
    client.trigger_batch([{"channel": "stock", "name": "changed", "data": "plain text"}])
    assert recorder.events == [
        {"name": "created", "channels": ["orders", "audit"], "data": {"id": 42}, "socket_id": "1.2"},
        {"name": "changed", "channels": ["stock"], "data": "plain text"},
    ]
    assert [(r.method, r.path, r.endpoint) for r in recorder.requests] == [
        ("POST", "/apps/1/events", "/events"),
        ("POST", "/apps/1/batch_events", "/batch_events"),
    ]


def test_records_queries_without_signing_parameters(client, recorder):
    client.channels_info("presence-", ["user_count"])
    [recorded] = recorder.requests
    assert (recorded.method, recorded.endpoint, recorded.body) == ("GET", "/channels", None)
    assert recorded.query == {"filter_by_prefix": "presence-", "info": "user_count"}


def test_recorded_requests_are_signed_as_for_pusher(client, recorder):
    client.trigger("orders", "created", {"id": 1})
    request = recorder.requests[0].request
    path, _, query = request.target.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    expected = sign_request("key", b"secret", "POST", path, {}, request.body, int(params["auth_timestamp"]))
    assert params["auth_signature"] == expected["auth_signature"]


def test_invalid_input_is_refused_before_anything_is_recorded(client, recorder):
    with pytest.raises(PusherValueError):
        client.trigger("bad channel!", "e", {})
    assert recorder.requests == []


def test_configured_responses_and_errors(client, recorder):
    recorder.respond(200, {"channels": {"orders": {"subscription_count": 3}}})
    recorder.respond(429, {"error": "slow down"})
    recorder.respond(error=PusherTimeout("no answer"))
    assert (
        client.trigger("orders", "e", {}, info=["subscription_count"]).channels["orders"].subscription_count
        == 3
    )
    with pytest.raises(PusherRateLimited):
        client.trigger("orders", "e", {})
    with pytest.raises(PusherTimeout):
        client.trigger("orders", "e", {})
    assert client.trigger("orders", "e", {}) == {}  # queue empty: 200 {}
    assert len(recorder.requests) == 4


def test_async_methods_give_finished_futures(client, recorder):
    recorder.respond(503, {"error": "down"})
    assert client["orders"].trigger_async("e", {"n": 1}).get_result() == TriggerResult(
        503, '{"error": "down"}'
    )
    assert client.trigger_async("orders", "e", {"n": 2}).result() == {}
    assert [e["data"] for e in recorder.events] == [{"n": 1}, {"n": 2}]


def test_clear_forgets_everything(client, recorder):
    client.send_to_user("u1", "e", {})
    recorder.respond(500)
    recorder.clear()
    assert recorder.requests == [] and client.trigger("c", "e", {}) == {}


def test_a_body_that_is_not_json_is_recorded_as_bytes(client, recorder):
    client.post("/custom", b"not json")
    assert recorder.requests[0].body == b"not json" and recorder.events == []
