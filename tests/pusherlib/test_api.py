"""Request building without a network: methods, paths, headers, bodies, query escaping."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from pusherlib import Pusher, PusherValueError
from pusherlib.encryption import decrypt, shared_secret
from pusherlib.transports import Request

MASTER_KEY = bytes(range(32))


def built(client: Pusher, method: str, *args, **kwargs) -> Request:
    return getattr(client._requests, method)(*args, **kwargs)


def client(**options) -> Pusher:
    return Pusher("77", "key", "secret", encryption_master_key_base64=base64.b64encode(MASTER_KEY), **options)


def test_trigger_request():
    request = built(client(), "trigger", ["a", "b"], "ev", {"n": 1}, "1.2", ["subscription_count"])
    assert (request.method, request.scheme, request.host, request.port) == (
        "POST",
        "https",
        "api.pusherapp.com",
        443,
    )
    assert urlsplit(request.target).path == "/apps/77/events"
    assert dict(request.headers)["Content-Type"] == "application/json"
    assert dict(request.headers)["X-Pusher-Library"].startswith("pusherlib")
    assert json.loads(request.body) == {
        "name": "ev",
        "channels": ["a", "b"],
        "data": '{"n": 1}',
        "socket_id": "1.2",
        "info": "subscription_count",
    }
    assert request.url.startswith("https://api.pusherapp.com/apps/77/events?")
    query = dict(parse_qsl(urlsplit(request.target).query))
    assert set(query) == {"auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature"}


def test_trigger_body_is_the_checked_body_of_trigger():
    requests = client().requests
    body = requests.trigger_body(("a", "b"), "ev", {"n": 1}, "1.2")
    assert body == {"name": "ev", "channels": ["a", "b"], "data": '{"n": 1}', "socket_id": "1.2"}
    assert json.loads(requests.trigger(("a", "b"), "ev", {"n": 1}, "1.2").body) == body
    with pytest.raises(PusherValueError, match="invalid channel name"):
        requests.trigger_body("a b", "ev", {})


def test_get_requests_have_no_body():
    request = built(client(host="localhost", port=6001, ssl=False), "channels_info", "pre;=@", ["user_count"])
    assert (request.method, request.body) == ("GET", None)
    assert "Content-Type" not in dict(request.headers)
    assert request.url.startswith("http://localhost:6001/apps/77/channels?")
    assert "filter_by_prefix=pre%3B%3D%40" in request.target
    assert dict(parse_qsl(urlsplit(request.target).query))["filter_by_prefix"] == "pre;=@"


def test_paths_of_each_method():
    paths = {
        "channel_info": built(client(), "channel_info", "a=b@c"),
        "users_info": built(client(), "users_info", "presence-room"),
        "user channel": built(client(), "channel_info", "#server-to-user-u1"),
        "terminate": built(client(), "terminate_user_connections", "u1"),
        "batch": built(client(), "trigger_batch", [{"channel": "c", "name": "e", "data": "x"}]),
    }
    assert {name: urlsplit(r.target).path for name, r in paths.items()} == {
        "channel_info": "/apps/77/channels/a=b@c",
        "users_info": "/apps/77/channels/presence-room/users",
        "user channel": "/apps/77/channels/%23server-to-user-u1",
        "terminate": "/apps/77/users/u1/terminate_connections",
        "batch": "/apps/77/batch_events",
    }
    assert json.loads(paths["terminate"].body) == {}
    assert json.loads(paths["batch"].body) == {"batch": [{"channel": "c", "name": "e", "data": "x"}]}


def test_send_to_user_is_a_trigger_on_the_user_channel():
    body = json.loads(built(client(), "send_to_user", "u1", "ev", "hi").body)
    assert body == {"name": "ev", "channels": ["#server-to-user-u1"], "data": "hi"}


def test_encrypted_data_in_the_body():
    request = built(client(), "trigger", "private-encrypted-x", "ev", {"secret": "yes"})
    data = json.loads(request.body)["data"]
    assert "yes" not in data
    assert json.loads(decrypt(data, shared_secret("private-encrypted-x", MASTER_KEY))) == {"secret": "yes"}
    again = json.loads(built(client(), "trigger", "private-encrypted-x", "ev", {"secret": "yes"}).body)[
        "data"
    ]
    assert json.loads(again)["nonce"] != json.loads(data)["nonce"]  # a fresh nonce each time


def test_timeout_is_carried_to_the_transport():
    assert built(client(timeout=1.5), "channels_info").timeout == 1.5
