"""Bad input is refused before any network I/O, with a message that says what is wrong.

The client points at a real HTTP server that counts requests: a refusal must leave the
count unchanged, an accepted edge case must reach it.
"""

from __future__ import annotations

import base64
import json

import pytest

from pusherlib import Pusher, PusherTypeError, PusherValueError
from tests.support.fault_server import FaultServer, Reply

MASTER_KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture(scope="module")
def server():
    with FaultServer(default=Reply.json(200, {"ok": True})) as running:
        yield running


@pytest.fixture
def client(server):
    with Pusher(
        "1",
        "key",
        "secret",
        host=server.host,
        port=server.port,
        ssl=False,
        encryption_master_key_base64=MASTER_KEY,
    ) as pusher:
        yield pusher


@pytest.fixture
def refused(server):
    """``refused(error_type, match, call, *args)``: raises, and nothing was sent."""

    def check(error_type, match, call, *args, **kwargs):
        before = server.request_count
        with pytest.raises(error_type, match=match):
            call(*args, **kwargs)
        assert server.request_count == before

    return check


@pytest.fixture
def accepted(server):
    """``accepted(call, *args)``: the request reached the server."""

    def check(call, *args, **kwargs):
        before = server.request_count
        call(*args, **kwargs)
        assert server.request_count == before + 1
        return server.requests[-1]

    return check


def test_errors_are_value_and_type_errors():
    assert issubclass(PusherValueError, ValueError)
    assert issubclass(PusherTypeError, TypeError)


# -- channel names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel",
    ["has space", "star*", "slash/", "accént", "", "hash#", "q?", "#other-channel", "#server-to-user-"],
)
def test_channel_names_with_bad_characters(client, refused, channel):
    refused(PusherValueError, "channel name", client.trigger, channel, "e", "x")


def test_channel_name_length_limit_is_164(client, refused, accepted):
    accepted(client.trigger, "c" * 164, "e", "x")
    refused(PusherValueError, "165 characters long; at most 164", client.trigger, "c" * 165, "e", "x")


def test_every_allowed_character(client, accepted):
    channel = "AZaz09-_=@,.;"
    request = accepted(client.trigger, channel, "e", "x")
    assert b'"channels":["AZaz09-_=@,.;"]' in request.body


def test_server_to_user_channels(client, refused, accepted):
    accepted(client.trigger, "#server-to-user-" + "u" * 200, "e", "x")
    refused(
        PusherValueError,
        "201 characters long; at most 200",
        client.trigger,
        "#server-to-user-" + "u" * 201,
        "e",
        "x",
    )
    refused(PusherValueError, "user id", client.trigger, "#server-to-user-a b", "e", "x")


@pytest.mark.parametrize("channels", [b"bytes", {"a": 1}, 42, None])
def test_channels_of_the_wrong_type(client, refused, channels):
    refused(PusherTypeError, "channels must be a str or a list", client.trigger, channels, "e", "x")


def test_channel_name_of_the_wrong_type(client, refused):
    refused(PusherTypeError, "channel name must be a str, not int", client.trigger, ["a", 5], "e", "x")


def test_at_most_100_channels(client, refused, accepted):
    request = accepted(client.trigger, [f"c{i}" for i in range(100)], "e", "x")
    assert b'"c99"' in request.body
    refused(
        PusherValueError,
        "101 channels given; at most 100",
        client.trigger,
        [f"c{i}" for i in range(101)],
        "e",
        "x",
    )
    refused(PusherValueError, "at least one channel", client.trigger, [], "e", "x")


# -- event names and data ----------------------------------------------------------------------


def test_event_name_limit_is_200(client, refused, accepted):
    accepted(client.trigger, "c", "e" * 200, "x")
    refused(PusherValueError, "201 characters long; at most 200", client.trigger, "c", "e" * 201, "x")
    refused(PusherValueError, "must not be empty", client.trigger, "c", "", "x")
    refused(PusherTypeError, "event name must be a str", client.trigger, "c", None, "x")


def test_data_limit_counts_utf8_bytes(client, refused, accepted):
    accepted(client.trigger, "c", "e", "x" * 10240)
    refused(PusherValueError, "10241 bytes; at most 10240", client.trigger, "c", "e", "x" * 10241)
    accepted(client.trigger, "c", "e", "é" * 5120)  # 2 bytes each
    refused(PusherValueError, "10241 bytes", client.trigger, "c", "e", "é" * 5120 + "x")
    refused(PusherValueError, "10242 bytes", client.trigger, "c", "e", "✓" * 3414)  # 3 bytes each


def test_data_limit_applies_to_the_encoded_json(client, refused, accepted):
    # json.dumps({"d": s}) adds 9 characters around s.
    accepted(client.trigger, "c", "e", {"d": "x" * (10240 - 9)})
    refused(PusherValueError, "10241 bytes", client.trigger, "c", "e", {"d": "x" * (10240 - 8)})


def test_data_limit_is_configurable(server, refused):
    small = Pusher.from_url(server.pusher_url, max_payload_bytes=10)
    refused(PusherValueError, "11 bytes; at most 10", small.trigger, "c", "e", "x" * 11)


def test_data_limit_in_batches(client, refused, accepted):
    accepted(client.trigger_batch, [{"channel": "c", "name": "e", "data": "x" * 10240}] * 10)
    events = [{"channel": "c", "name": "e", "data": "x"}, {"channel": "c", "name": "e", "data": "x" * 10241}]
    refused(PusherValueError, "10241 bytes", client.trigger_batch, events)


def test_data_that_is_not_json(client, refused):
    refused(PusherTypeError, "cannot be encoded as JSON", client.trigger, "c", "e", {"when": object()})
    circular: list = []
    circular.append(circular)
    refused(PusherValueError, "Circular reference", client.trigger, "c", "e", circular)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), {"a": [float("nan")]}])
def test_nan_and_infinity_are_not_sent_as_json(client, refused, value):
    """Python would write NaN / Infinity, which JSON.parse refuses in the browser."""
    refused(PusherValueError, "Out of range float", client.trigger, "c", "e", value)
    refused(
        PusherValueError,
        "Out of range float",
        client.trigger_batch,
        [{"channel": "c", "name": "e", "data": value}],
    )
    with pytest.raises(PusherValueError, match="auth data cannot be encoded as JSON"):
        client.authenticate("presence-c", "1.1", {"user_id": "u", "user_info": {"score": value}})
    with pytest.raises(PusherValueError, match="auth data cannot be encoded as JSON"):
        client.authenticate_user("1.1", {"id": "u", "score": value})


@pytest.mark.parametrize("channel", ["c", "private-encrypted-c"])
def test_lone_surrogates_are_refused(client, refused, accepted, channel):
    """A lone surrogate (JSON's "\\ud800", read by Python) cannot be encoded as UTF-8."""
    for data in ("\ud800", "x" * 5000 + "\udc00", {"k": ["é\ud83d"]}):
        refused(PusherValueError, "lone surrogate", client.trigger, channel, "e", data)
        refused(
            PusherValueError,
            "lone surrogate",
            client.trigger_batch,
            [{"channel": channel, "name": "e", "data": data}],
        )
    refused(PusherValueError, "event name is not valid Unicode", client.trigger, channel, "e\udfff", "x")
    pair = json.loads(r'"\ud83d\ude00 é"')  # JSON's surrogate pair: one character, fine
    assert pair == "\U0001f600 é"
    accepted(client.trigger, channel, "é😀", pair)


# -- socket ids and user ids ------------------------------------------------------------


@pytest.mark.parametrize(
    "socket_id", ["abc", "1.2.3", "12", ".1", "1.", " 1.2", "1.2\n", "\u0661.\u0662", "1,2"]
)
def test_bad_socket_ids(client, refused, socket_id):
    refused(PusherValueError, "invalid socket_id", client.trigger, "c", "e", "x", socket_id)
    refused(PusherValueError, "invalid socket_id", client.authenticate, "private-c", socket_id)


def test_socket_id_type_and_the_accepted_forms(client, refused, accepted):
    refused(PusherTypeError, "socket_id must be a str", client.trigger, "c", "e", "x", 1.2)
    assert b'"socket_id":"123.456"' in accepted(client.trigger, "c", "e", "x", "123.456").body
    # An empty socket_id (a blank form field) excludes nobody, as in the official library.
    assert b"socket_id" not in accepted(client.trigger, "c", "e", "x", "").body


@pytest.mark.parametrize(
    ("user_id", "match"),
    [("", "must not be empty"), ("a b", "invalid user id"), ("u" * 201, "201 characters long; at most 200")],
)
def test_bad_user_ids(client, refused, user_id, match):
    refused(PusherValueError, match, client.send_to_user, user_id, "e", "x")
    refused(PusherValueError, match, client.terminate_user_connections, user_id)
    refused(PusherValueError, match, client.authenticate_user, "1.2", {"id": user_id})


def test_user_id_edges_accepted(client, accepted):
    request = accepted(client.send_to_user, "u" * 200, "e", "x")
    assert b'"channels":["#server-to-user-' + b"u" * 200 + b'"]' in request.body
    assert (
        accepted(client.terminate_user_connections, "a=b@c").path
        == "/apps/1/users/a%3Db%40c/terminate_connections"
    )


def test_user_data_for_signin(client):
    with pytest.raises(PusherTypeError, match="user_data must be a dict"):
        client.authenticate_user("1.2", "bob")
    with pytest.raises(PusherValueError, match="user_data needs an id"):
        client.authenticate_user("1.2", {"name": "bob"})
    with pytest.raises(PusherValueError, match="user_data needs an id"):
        client.authenticate_user("1.2", {"id": 5})


# -- batches --------------------------------------------------------------------------------


def test_batch_of_at_most_10(client, refused, accepted):
    event = {"channel": "c", "name": "e", "data": "x"}
    accepted(client.trigger_batch, [event] * 10)
    refused(PusherValueError, "11 events given; at most 10", client.trigger_batch, [event] * 11)
    refused(PusherValueError, "at least one event", client.trigger_batch, [])


def test_batch_given_once_by_either_name(client, refused, accepted):
    event = {"channel": "c", "name": "e", "data": "x"}
    assert b'"batch":[' in accepted(client.trigger_batch, batch=[event]).body  # the official name
    refused(PusherTypeError, "events or batch=", client.trigger_batch)
    refused(PusherTypeError, "events or batch=", client.trigger_batch, [event], batch=[event])


@pytest.mark.parametrize(
    ("events", "error_type", "match"),
    [
        ({"channel": "c", "name": "e", "data": "x"}, PusherTypeError, "events must be a list"),
        (["not a dict"], PusherTypeError, "batch event 0 must be a dict"),
        ([{"channel": "c", "name": "e"}], PusherValueError, "batch event 0 needs the keys"),
        ([{"channel": "c", "name": "e", "data": 1, "colour": "red"}], PusherValueError, "needs the keys"),
        ([{"channel": "bad channel", "name": "e", "data": 1}], PusherValueError, "invalid channel name"),
        ([{"channel": "c", "name": "e", "data": 1, "socket_id": "x"}], PusherValueError, "invalid socket_id"),
    ],
)
def test_bad_batches(client, refused, events, error_type, match):
    refused(error_type, match, client.trigger_batch, events)


# -- encrypted channels ---------------------------------------------------------------------------


def test_encrypted_channel_with_others_is_refused(client, refused):
    refused(
        PusherValueError,
        "must go to that channel alone",
        client.trigger,
        ["private-encrypted-a", "b"],
        "e",
        "x",
    )


def test_encrypted_channel_without_master_key_is_refused(server, refused):
    plain = Pusher.from_url(server.pusher_url)
    refused(
        PusherValueError, "need encryption_master_key_base64", plain.trigger, "private-encrypted-a", "e", "x"
    )
    batch = [{"channel": "private-encrypted-a", "name": "e", "data": "x"}]
    refused(PusherValueError, "need encryption_master_key_base64", plain.trigger_batch, batch)
    refused(
        PusherValueError,
        "need encryption_master_key_base64",
        plain.authenticate,
        "private-encrypted-a",
        "1.2",
    )


@pytest.mark.parametrize(
    ("master_key", "match"),
    [("not base64!", "not valid base64"), (base64.b64encode(b"short").decode(), "must be 32 bytes, got 5")],
)
def test_bad_master_keys(master_key, match):
    with pytest.raises(PusherValueError, match=match):
        Pusher("1", "k", "s", encryption_master_key_base64=master_key)


# -- queries and auth arguments ---------------------------------------------------------------------


def test_query_arguments(client, refused):
    refused(PusherValueError, "needs a presence- channel", client.users_info, "private-room")
    refused(PusherValueError, "invalid channel name", client.channel_info, "no/slash")
    refused(PusherValueError, "invalid info attribute", client.channel_info, "c", ["user-count"])
    refused(PusherTypeError, "info must be a str or a list", client.trigger, "c", "e", "x", None, 5)
    refused(PusherTypeError, "prefix_filter must be a str", client.channels_info, 5)


def test_authenticate_arguments(client):
    with pytest.raises(PusherValueError, match="only private- and presence- channels"):
        client.authenticate("public", "1.2")
    with pytest.raises(PusherTypeError, match="presence channels need custom_data"):
        client.authenticate("presence-room", "1.2")
    with pytest.raises(PusherValueError, match="needs a non-empty user_id"):
        client.authenticate("presence-room", "1.2", {"user_info": {}})
    with pytest.raises(PusherValueError, match="unknown keys"):
        client.authenticate("presence-room", "1.2", {"user_id": "1", "colour": "red"})


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "options", "error_type", "match"),
    [
        (("", "k", "s"), {}, PusherValueError, "app_id must be 1 to 200 characters"),
        (("my app", "k", "s"), {}, PusherValueError, "app_id must be 1 to 200 characters without spaces"),
        ((None, "k", "s"), {}, PusherTypeError, "app_id must be a str or int"),
        (("1", "", "s"), {}, PusherTypeError, "key must be a non-empty str"),
        (("1", "k", None), {}, PusherTypeError, "secret must be a non-empty str"),
        (("1", "k", "s"), {"port": 70000}, PusherValueError, "port must be an int from 1 to 65535"),
        (("1", "k", "s"), {"port": "eighty"}, PusherValueError, "port must be an int"),
        (("1", "k", "s"), {"timeout": 0}, PusherValueError, "timeout must be a positive number"),
        (("1", "k", "s"), {"max_payload_bytes": 0}, PusherValueError, "max_payload_bytes"),
        (("1", "k", "s"), {"json_encoder": object()}, PusherTypeError, "json.JSONEncoder subclass"),
        (("1", "k", "s"), {"json_decoder": dict}, PusherTypeError, "json.JSONDecoder subclass"),
        (("1", "k", "s"), {"retries": -1}, PusherValueError, "retries must be an int >= 0"),
        (("1", "k", "s"), {"encryption_master_key": "short"}, PusherValueError, "must be 32 bytes"),
        (("1", "k", "s"), {"proxy": 3128}, PusherValueError, "proxy must be a URL"),
        (("1", "k", "s"), {"colour": "red"}, PusherTypeError, "unexpected arguments"),
        (("1", "k", "s"), {"backend": object}, PusherTypeError, "backend .* is not known"),
    ],
)
def test_bad_configuration(arguments, options, error_type, match):
    with pytest.raises(error_type, match=match):
        Pusher(*arguments, **options)


def test_configuration_defaults():
    assert Pusher(7, "k", "s").app_id == "7"
    hosted = Pusher("1", "k", "s", cluster="eu")
    assert (hosted.host, hosted.port, hosted.ssl) == ("api-eu.pusher.com", 443, True)
    plain = Pusher("1", "k", "s", ssl=False)
    assert (plain.host, plain.port) == ("api.pusherapp.com", 80)
    assert Pusher("1", "k", "s", host="h", port="8080").port == 8080
