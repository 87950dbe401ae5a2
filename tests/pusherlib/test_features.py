"""pusherlib's features beyond the official library: typed ``info`` counts (against a
Pusher-shaped server, as soketi ignores ``info``), generic signed ``get``/``post``, the
``pusherlib`` logger and ``on_request`` hook, retries, and custom transports returning
``pusherlib.Response``."""

from __future__ import annotations

import json
import logging

import pytest

from pusherlib import (
    ChannelCounts,
    Pusher,
    PusherBadAuth,
    PusherBadRequest,
    PusherServerError,
    PusherValueError,
    RequestRecord,
    Response,
    Transport,
)
from pusherlib.transports.http import HTTPTransport
from tests.support.fault_server import FaultServer, Reply
from tests.support.pusher_api import PusherShapedServer
from tests.support.soketi import unique
from tests.support.subscriber import Subscriber

MASTER_KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
COUNTS = {
    "presence-lobby": {"subscription_count": 51, "user_count": 42},
    "private-orders": {"subscription_count": 4},
}


@pytest.fixture
def pusher_api():
    with PusherShapedServer("77", "api-key", "api-secret", COUNTS) as server:
        yield server


def client_of(server: PusherShapedServer, **options) -> Pusher:
    return Pusher(server.app_id, server.key, server.secret, False, "127.0.0.1", server.port, **options)


# -- info on trigger -----------------------------------------------------------------------------


def test_trigger_info_gives_typed_counts_per_channel(pusher_api):
    with client_of(pusher_api) as client:
        answer = client.trigger(["presence-lobby", "private-orders"], "e", {}, info=["subscription_count"])
        assert answer.channels == {
            "presence-lobby": ChannelCounts(subscription_count=51),
            "private-orders": ChannelCounts(subscription_count=4),
        }
        answer = client.trigger("presence-lobby", "e", {}, info="user_count,subscription_count")
        assert answer.channels["presence-lobby"] == ChannelCounts(subscription_count=51, user_count=42)
        assert answer == {"channels": {"presence-lobby": {"subscription_count": 51, "user_count": 42}}}
        assert pusher_api.requests[-1]["info"] == "user_count,subscription_count"


def test_trigger_without_info_has_no_counts(pusher_api):
    with client_of(pusher_api) as client:
        assert client.trigger("private-orders", "e", {}).channels == {}


def test_batch_info_gives_counts_per_event_in_order(pusher_api):
    with client_of(pusher_api) as client:
        answer = client.trigger_batch(
            [
                {"channel": "private-orders", "name": "a", "data": 1, "info": "subscription_count"},
                {"channel": "presence-lobby", "name": "b", "data": 2, "info": ["user_count"]},
                {"channel": "quiet", "name": "c", "data": 3},
            ]
        )
    assert answer.batch == [
        ChannelCounts(subscription_count=4),
        ChannelCounts(user_count=42),
        ChannelCounts(),
    ]


def test_the_pusher_shaped_server_refuses_a_bad_signature_and_user_count_off_presence(pusher_api):
    wrong = Pusher(pusher_api.app_id, pusher_api.key, "other", False, "127.0.0.1", pusher_api.port)
    with pytest.raises(PusherBadAuth):
        wrong.trigger("private-orders", "e", {})
    with client_of(pusher_api) as client, pytest.raises(PusherBadRequest, match="presence"):
        client.trigger("private-orders", "e", {}, info=["user_count"])


def test_trigger_info_reaches_soketi_and_the_answer_stays_a_dict(pusher, soketi):
    # soketi ignores info: the answer has no counts, but the call works the same.
    answer = pusher.trigger(unique("info-"), "e", {}, info=["subscription_count"])
    assert answer.channels == {} and isinstance(answer, dict)


# -- generic signed requests ----------------------------------------------------------------------


def test_get_reaches_any_endpoint(pusher, soketi):
    room = unique("presence-generic-")
    with Subscriber(soketi.ws_url) as member:
        member.subscribe(room, pusher.authenticate(room, member.socket_id, {"user_id": "ada"}))
        assert pusher.get(f"/channels/{room}/users") == {"users": [{"id": "ada"}]}
        listed = pusher.get("/channels", {"filter_by_prefix": "presence-generic-", "info": "user_count"})
        assert room in listed["channels"]
        assert pusher.get(f"/channels/{room}", {"info": "user_count"})["user_count"] == 1


def test_post_reaches_any_endpoint(pusher, subscriber):
    channel = unique("generic-")
    subscriber.subscribe(channel)
    pusher.post("/events", {"name": "posted", "channels": [channel], "data": '{"n":1}'})
    pusher.post("/batch_events", json.dumps({"batch": [{"channel": channel, "name": "raw", "data": "x"}]}))
    assert subscriber.event("posted", channel)["data"] == '{"n":1}'
    assert subscriber.event("raw", channel)["data"] == "x"


def test_a_generic_request_with_the_wrong_secret_is_refused_by_soketi(soketi):
    wrong = Pusher(soketi.app_id, soketi.key, "wrong", host="127.0.0.1", port=soketi.port, ssl=False)
    with pytest.raises(PusherBadAuth):
        wrong.get("/channels")


@pytest.mark.parametrize(
    ("path", "params", "match"),
    [
        ("channels", None, "path must look like"),
        ("/../../other", None, "path must look like"),
        ("/channels//x", None, "path must look like"),
        ("/channels", {"auth_signature": "forged"}, "invalid query parameter name"),
        ("/channels", {"a&b": "1"}, "invalid query parameter name"),
    ],
)
def test_generic_requests_refuse_paths_and_params_that_would_break_out(pusher, path, params, match):
    with pytest.raises(PusherValueError, match=match):
        pusher.get(path, params)


# -- logging and the on_request hook --------------------------------------------------------------


def test_each_request_is_logged_and_reported_without_the_secret(soketi, subscriber, caplog):
    records: list[RequestRecord] = []
    channel = unique("logged-")
    subscriber.subscribe(channel)
    client = Pusher.from_url(soketi.url, on_request=records.append)
    with caplog.at_level(logging.DEBUG, logger="pusherlib"), client:
        request = client.requests.trigger(channel, "e", "x")
        client.trigger(channel, "e", "x")
        client.channels_info()
    signature = dict(p.split("=") for p in request.target.split("?")[1].split("&"))["auth_signature"]
    assert [(r.method, r.path, r.status, r.attempt) for r in records] == [
        ("POST", f"/apps/{soketi.app_id}/events", 200, 1),
        ("GET", f"/apps/{soketi.app_id}/channels", 200, 1),
    ]
    assert all(r.duration > 0 and r.error is None for r in records)
    lines = [r.getMessage() for r in caplog.records if r.name == "pusherlib"]
    assert len(lines) == 2 and lines[0].startswith(f"POST /apps/{soketi.app_id}/events -> 200 in ")
    everything = " ".join(lines + [repr(r) for r in records] + [repr(r.__dict__) for r in caplog.records])
    assert soketi.secret not in everything
    assert "auth_signature" not in everything and signature[:16] not in everything


def test_an_error_answer_is_reported_with_its_status(soketi):
    records: list[RequestRecord] = []
    wrong = Pusher.from_url(wrong_url(soketi), on_request=records.append)
    with pytest.raises(PusherBadAuth):
        wrong.trigger("c", "e", "x")
    assert [(r.status, type(r.error)) for r in records] == [(401, PusherBadAuth)]


def wrong_url(soketi) -> str:
    return soketi.url.replace(f":{soketi.secret}@", ":wrong@")


def test_a_failing_hook_does_not_break_the_request(pusher, soketi, subscriber, caplog):
    def broken(record):
        raise RuntimeError("hook bug")

    channel = unique("hooked-")
    subscriber.subscribe(channel)
    with Pusher.from_url(soketi.url, on_request=broken) as client:
        client.trigger(channel, "e", "still sent")
    assert subscriber.event("e", channel)["data"] == "still sent"
    assert "the on_request hook failed" in caplog.text


def test_retries_resend_a_retryable_failure_and_report_each_attempt():
    records: list[RequestRecord] = []
    with FaultServer([Reply(503), Reply(500)]) as server:
        client = Pusher.from_url(server.pusher_url, retries=2, on_request=records.append)
        assert client.trigger("c", "e", "x") == {}
        assert server.request_count == 3
    assert [(r.status, r.attempt) for r in records] == [(503, 1), (500, 2), (200, 3)]


def test_without_retries_a_failure_is_raised_at_once():
    with FaultServer([Reply(503)]) as server:
        client = Pusher.from_url(server.pusher_url)
        with pytest.raises(PusherServerError):
            client.trigger("c", "e", "x")
        assert server.request_count == 1


def test_async_requests_are_reported_too(soketi):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import ndb

    records: list[RequestRecord] = []
    with (
        Pusher.from_url(soketi.url, on_request=records.append) as client,
        ndb.Client(project="test", credentials=AnonymousCredentials()).context(),
    ):
        client.trigger_async(unique("async-"), "e", "x").result()
    assert [(r.method, r.status, r.attempt) for r in records] == [("POST", 200, 1)]


def test_an_async_request_that_got_no_answer_is_reported():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import ndb

    from pusherlib import PusherConnectionError
    from tests.support.fault_server import Reset

    records: list[RequestRecord] = []
    with (
        FaultServer([Reset()]) as server,
        Pusher.from_url(server.pusher_url, on_request=records.append) as client,
        ndb.Client(project="test", credentials=AnonymousCredentials()).context(),
    ):
        future = client.trigger_async("c", "e", "x")
        with pytest.raises(PusherConnectionError):
            future.result()
    assert [(r.status, type(r.error)) for r in records] == [(None, PusherConnectionError)]


# -- custom transports --------------------------------------------------------------------------


class ThroughDefault(Transport):
    """A custom transport as the README describes it: ``send`` returns a ``pusherlib.Response``."""

    def __init__(self) -> None:
        self.inner = HTTPTransport()
        self.sent = 0

    def send(self, request):
        self.sent += 1
        answer = self.inner.send(request)
        return Response(answer.status, answer.body, answer.headers)


def test_a_custom_transport_returning_response_works(soketi, subscriber):
    channel = unique("custom-")
    subscriber.subscribe(channel)
    transport = ThroughDefault()
    with Pusher.from_url(soketi.url, transport=transport) as client:
        client.trigger(channel, "e", "custom")
    assert subscriber.event("e", channel)["data"] == "custom" and transport.sent == 1


def test_without_pynacl_only_encryption_is_refused_with_how_to_install(monkeypatch, soketi, subscriber):
    import sys

    for name in ("nacl", "nacl.secret", "nacl.utils", "nacl.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)  # as if PyNaCl were not installed
    channel = unique("no-nacl-")
    subscriber.subscribe(channel)
    with Pusher.from_url(soketi.url, encryption_master_key_base64=MASTER_KEY) as client:
        client.trigger(channel, "e", "plain still works")
        with pytest.raises(PusherValueError, match="pip install PyNaCl"):
            client.trigger("private-encrypted-x", "e", "secret")
    assert subscriber.event("e", channel)["data"] == "plain still works"
