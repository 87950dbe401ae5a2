"""The shapes the seeds' users wrote, against soketi: ``pusher["channel"].trigger(...)``
with ``.status_code``, ``encoder=``, ``pusher_from_url()``, ``trigger_async`` on a channel."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import ndb

from pusherlib import Pusher, PusherConnectionError, PusherValueError, TriggerResult, pusher_from_url
from tests.support.fault_server import FaultServer, Reply
from tests.support.processes import free_port
from tests.support.soketi import unique


def test_first_app_engine_wrapper_handler(soketi, subscriber):
    """The worker handler of the first App Engine wrapper, as its README wrote it."""
    channel = unique("seed-")
    subscriber.subscribe(channel)
    pusher = Pusher(
        app_id=soketi.app_id,
        key=soketi.key,
        secret=soketi.secret,
        host="127.0.0.1",
        port=soketi.port,
        ssl=False,
    )
    data = {"msg": "Hello world!"}
    result = pusher[channel].trigger("event", data=data)
    assert result.status_code >= 200 and result.status_code <= 299
    assert result.ok and isinstance(result, TriggerResult)
    assert json.loads(subscriber.event("event", channel)["data"]) == data


def test_old_module_positional_socket_id(pusher, subscriber, other_subscriber):
    channel = unique("seed-")
    subscriber.subscribe(channel)
    other_subscriber.subscribe(channel)
    assert pusher[channel].trigger("an_event", {"some": "data"}, subscriber.socket_id).status_code == 200
    assert json.loads(other_subscriber.event("an_event", channel)["data"]) == {"some": "data"}
    pusher.trigger(channel, "marker", "m")
    assert subscriber.wait_for(lambda m: m["event"] in ("an_event", "marker"))["event"] == "marker"


def test_http_errors_become_the_status_code(soketi):
    wrong = Pusher.from_url(soketi.url.replace(f":{soketi.secret}@", ":wrong@"))
    result = wrong["c"].trigger("e", {"x": 1})
    assert (result.status_code, result.ok) == (401, False)
    assert "authentication failed" in result.content


def test_statuses_from_the_fault_server():
    with FaultServer([Reply(429, b"slow down"), Reply(503, b"maintenance")]) as fault:
        client = Pusher.from_url(fault.pusher_url)
        first, second = client["c"].trigger("e", {}), client["c"].trigger("e", {})
    assert (first.status_code, first.content) == (429, "slow down")
    assert (second.status_code, second.content) == (503, "maintenance")


def test_no_answer_and_bad_input_still_raise():
    client = Pusher("1", "k", "s", host="127.0.0.1", port=free_port(), ssl=False)
    with pytest.raises(PusherConnectionError):
        client["c"].trigger("e", {})
    with pytest.raises(PusherValueError):
        client["bad channel"].trigger("e", {})


def test_encoder_alias_for_json_encoder(soketi, subscriber):
    class AppEncoder(json.JSONEncoder):
        """Like Django's DjangoJSONEncoder: dates, decimals, UUIDs."""

        def default(self, o):
            if isinstance(o, (datetime.date, datetime.datetime)):
                return o.isoformat()
            if isinstance(o, (decimal.Decimal, uuid.UUID)):
                return str(o)
            return super().default(o)

    channel, presence = unique("encoder-"), unique("presence-encoder-")
    subscriber.subscribe(channel)
    client = Pusher.from_url(soketi.url, encoder=AppEncoder)
    assert client.json_encoder is AppEncoder
    ident = uuid.UUID(int=7)
    client[channel].trigger(
        "e", {"on": datetime.date(2012, 1, 2), "price": decimal.Decimal("9.50"), "id": ident}
    )
    assert json.loads(subscriber.event("e", channel)["data"]) == {
        "on": "2012-01-02",
        "price": "9.50",
        "id": str(ident),
    }
    answer = client.authenticate(
        presence, subscriber.socket_id, {"user_id": "u", "user_info": {"since": datetime.date(2020, 1, 1)}}
    )
    assert subscriber.subscribe(presence, answer)["event"] == "pusher_internal:subscription_succeeded"


def test_pusher_from_url(soketi, subscriber, monkeypatch):
    channel = unique("heroku-")
    subscriber.subscribe(channel)
    monkeypatch.setenv("PUSHER_URL", soketi.url)
    pusher_from_url()[channel].trigger("from-env", "1")
    pusher_from_url(soketi.url)[channel].trigger("from-url", "2")
    assert subscriber.event("from-env", channel)["data"] == "1"
    assert subscriber.event("from-url", channel)["data"] == "2"


def test_channel_trigger_async_in_an_ndb_context(pusher, subscriber):
    # The seed-style future gives the same status object as the blocking trigger.
    channel = unique("gae-ndb-")
    subscriber.subscribe(channel)
    with ndb.Client(project="test", credentials=AnonymousCredentials()).context():
        future = pusher[channel].trigger_async("later", {"n": 1})
        assert isinstance(future, ndb.Future)
        result = future.get_result()
    assert result == pusher[channel].trigger("now", {"n": 2})
    assert isinstance(result, TriggerResult) and result.status_code == 200 and result.ok
    assert json.loads(subscriber.event("later", channel)["data"]) == {"n": 1}


def test_channel_trigger_async_gives_an_error_status_like_trigger(soketi):
    wrong = Pusher(soketi.app_id, soketi.key, "not-the-secret", host="127.0.0.1", port=soketi.port, ssl=False)
    with ndb.Client(project="test", credentials=AnonymousCredentials()).context():
        result = wrong["gae-ndb-refused"].trigger_async("e", {"n": 1}).get_result()
    assert result == wrong["gae-ndb-refused"].trigger("e", {"n": 1})
    assert (result.status_code, result.ok) == (401, False)
