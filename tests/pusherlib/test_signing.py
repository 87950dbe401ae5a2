"""Signatures checked against values computed independently of pusherlib.

Three judges: the vectors published in Pusher's documentation, HMACs computed here with
``hmac``/``hashlib``, and the official ``pusher`` library (a test-only dependency) signing
the same request at the same timestamp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl, urlsplit

import pusher as official
import pusher.http
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pusherlib import Pusher
from pusherlib.api import RequestBuilder
from pusherlib.auth import authenticate_channel
from pusherlib.signing import sign_request, webhook_signature
from pusherlib.transports import Request
from pusherlib.validation import RESERVED_EVENT_PREFIXES

# The example app of Pusher's signature documentation.
DOC_KEY, DOC_SECRET = "278d425bdf160c739803", "7ad3773142a6692b25b8"
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
TIMESTAMP = 1353088179


def builder(app_id: str = "3", key: str = DOC_KEY, secret: str = DOC_SECRET) -> RequestBuilder:
    return RequestBuilder(
        app_id=app_id,
        key=key,
        secret=secret,
        scheme="http",
        host="127.0.0.1",
        port=80,
        timeout=5,
        encode_json=json.JSONEncoder(ensure_ascii=False).encode,
        max_payload_bytes=10240,
        master_key=base64.b64decode(MASTER_KEY),
        clock=lambda: TIMESTAMP,
    )


def query_of(request: Request) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.target).query, keep_blank_values=True))


def official_signature(request: Request, monkeypatch, secret: str = DOC_SECRET) -> dict[str, str]:
    """The official library's ``auth_*`` parameters for the same method, path, body and
    non-auth parameters, at the same timestamp."""
    client = official.Pusher(app_id="3", key=DOC_KEY, secret=secret)._pusher_client
    params = {k: v for k, v in query_of(request).items() if not k.startswith(("auth_", "body_md5"))}
    signed = object.__new__(pusher.http.Request)
    signed.client, signed.method, signed.path = client, request.method, urlsplit(request.target).path
    signed.body, signed.query_params = request.body or b"", params
    monkeypatch.setattr(pusher.http.time, "time", lambda: TIMESTAMP)
    signed._generate_auth()
    return signed.query_params


def test_documented_request_signature():
    """Pusher's documented example request, rebuilt by pusherlib byte for byte."""
    request = builder().trigger("project-3", "foo", '{"some":"data"}')
    assert request.body == b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    query = query_of(request)
    assert query["body_md5"] == "ec365a775a4cd0599faeb73354201b6f"
    assert query["auth_timestamp"] == str(TIMESTAMP)
    assert query["auth_version"] == "1.0"
    assert query["auth_key"] == DOC_KEY
    assert query["auth_signature"] == "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"


def test_documented_channel_auth_signatures():
    private = authenticate_channel(
        key=DOC_KEY, secret=DOC_SECRET.encode(), channel="private-foobar", socket_id="1234.1234"
    )
    assert private == {"auth": f"{DOC_KEY}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"}
    presence = authenticate_channel(
        key=DOC_KEY,
        secret=DOC_SECRET.encode(),
        channel="presence-foobar",
        socket_id="1234.1234",
        custom_data={"user_id": 10, "user_info": {"name": "Mr. Channels"}},
        encode_json=lambda value: json.dumps(value, separators=(",", ":")),
    )
    assert presence["channel_data"] == '{"user_id":10,"user_info":{"name":"Mr. Channels"}}'
    assert presence["auth"] == f"{DOC_KEY}:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"


def test_hand_computed_hmac_of_a_get_request():
    request = builder(app_id="42", key="k", secret="s3cr3t").channels_info("presence-", ["user_count"])
    query = query_of(request)
    assert "body_md5" not in query
    string_to_sign = (
        "GET\n/apps/42/channels\nauth_key=k&auth_timestamp=1353088179&auth_version=1.0"
        "&filter_by_prefix=presence-&info=user_count"
    )
    expected = hmac.new(b"s3cr3t", string_to_sign.encode(), hashlib.sha256).hexdigest()
    assert query["auth_signature"] == expected


REQUESTS = {
    "trigger": lambda b: b.trigger("my-channel", "my-event", {"message": "héllo ✓"}),
    "trigger to several channels": lambda b: b.trigger(["a", "b-2", "c=3"], "e", "text", socket_id="1.2"),
    "trigger with info": lambda b: b.trigger("presence-x", "e", [1, 2], info=["user_count"]),
    "encrypted trigger": lambda b: b.trigger("private-encrypted-x", "e", {"secret": 1}),
    "batch": lambda b: b.trigger_batch(
        [{"channel": "a", "name": "e", "data": {"n": i}, "info": "subscription_count"} for i in range(3)]
    ),
    "send_to_user": lambda b: b.send_to_user("user-1", "e", "hi"),
    "terminate_user_connections": lambda b: b.terminate_user_connections("user-1"),
    "channels_info": lambda b: b.channels_info(),
    "channels_info with prefix": lambda b: b.channels_info("presence-", ("user_count",)),
    "channel_info": lambda b: b.channel_info("presence-room", ["user_count", "subscription_count"]),
    "users_info": lambda b: b.users_info("presence-room"),
}


def assert_signed_as_official(request: Request, monkeypatch) -> None:
    ours = query_of(request)
    if request.body is not None:
        theirs = official_signature(request, monkeypatch)
        assert ours["body_md5"] == theirs["body_md5"] == hashlib.md5(request.body).hexdigest()
        assert ours["auth_signature"] == theirs["auth_signature"]
    else:
        # The official library adds the MD5 of an empty body to GETs: sign our exact
        # parameters with its functions instead.
        params = {k: v for k, v in ours.items() if k != "auth_signature"}
        string_to_sign = f"GET\n{urlsplit(request.target).path}\n{pusher.http.make_query_string(params)}"
        assert ours["auth_signature"] == pusher.signature.sign(DOC_SECRET, string_to_sign)


@pytest.mark.parametrize("make", REQUESTS.values(), ids=REQUESTS.keys())
def test_same_signature_as_the_official_library(make, monkeypatch):
    assert_signed_as_official(make(builder()), monkeypatch)


def test_official_request_resigned_by_pusherlib(monkeypatch):
    """The official library's own trigger request: same body, same timestamp, same signature."""
    monkeypatch.setattr(pusher.http.time, "time", lambda: TIMESTAMP)
    client = official.Pusher(app_id="3", key=DOC_KEY, secret=DOC_SECRET)._pusher_client
    theirs = client.trigger.make_request(["a", "b"], "ev", {"x": "ü"}, "123.456")
    ours = sign_request(DOC_KEY, DOC_SECRET.encode(), "POST", theirs.path, {}, theirs.body, TIMESTAMP)
    assert ours["body_md5"] == theirs.query_params["body_md5"]
    assert ours["auth_signature"] == theirs.query_params["auth_signature"]


@settings(max_examples=150, deadline=None)
@given(
    channel=st.from_regex(r"[-a-zA-Z0-9_=@,.;]{1,164}", fullmatch=True),
    # The protocol's own event names are refused before signing (test_pusherlib_validation).
    event=st.text(min_size=1, max_size=200).filter(lambda name: not name.startswith(RESERVED_EVENT_PREFIXES)),
    data=st.text(max_size=300),
    prefix=st.from_regex(r"[-a-zA-Z0-9_=@,.;]{0,20}", fullmatch=True),
)
def test_signatures_agree_on_any_names_and_data(channel, event, data, prefix):
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert_signed_as_official(builder().trigger(channel, event, data), monkeypatch)
        assert_signed_as_official(builder().channels_info(prefix), monkeypatch)


# -- auth answers: equal to the official library's authenticate output ---------------


@pytest.fixture
def clients():
    options = {"encryption_master_key_base64": MASTER_KEY}
    return (
        Pusher("3", DOC_KEY, DOC_SECRET, **options),
        official.Pusher(app_id="3", key=DOC_KEY, secret=DOC_SECRET, **options),
    )


@pytest.mark.parametrize(
    ("channel", "custom_data"),
    [
        ("private-orders", None),
        ("private-a=b@c,d.e;f", None),
        ("presence-room", {"user_id": "42"}),
        ("presence-room", {"user_id": 7, "user_info": {"name": "Zoë", "tags": ["a", 1, None, True]}}),
    ],
)
def test_authenticate_equals_official(clients, channel, custom_data):
    ours, theirs = clients
    assert ours.authenticate(channel, "123.456", custom_data) == theirs.authenticate(
        channel, "123.456", custom_data
    )


def test_authenticate_encrypted_equals_official(clients):
    ours, theirs = clients
    mine = ours.authenticate("private-encrypted-vault", "1.2")
    official_answer = theirs.authenticate("private-encrypted-vault", "1.2")
    # The official library returns the shared secret as bytes (not JSON-serializable).
    assert mine == {**official_answer, "shared_secret": official_answer["shared_secret"].decode()}
    expected = hashlib.sha256(b"private-encrypted-vault" + base64.b64decode(MASTER_KEY)).digest()
    assert base64.b64decode(mine["shared_secret"]) == expected


def test_authenticate_user_equals_official(clients):
    ours, theirs = clients
    user = {"id": "user-9", "user_info": {"name": "Ana"}, "watchlist": ["b", "c"]}
    answer = ours.authenticate_user("55.66", user)
    assert answer == theirs.authenticate_user("55.66", user)
    message = f"55.66::user::{answer['user_data']}".encode()
    assert answer["auth"] == f"{DOC_KEY}:{hmac.new(DOC_SECRET.encode(), message, 'sha256').hexdigest()}"


def test_webhook_signature_accepted_by_official(clients):
    _, theirs = clients
    body = json.dumps({"time_ms": int(time.time() * 1000), "events": []})
    signature = webhook_signature(DOC_SECRET.encode(), body.encode())
    assert signature == hmac.new(DOC_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    assert theirs.validate_webhook(DOC_KEY, signature, body) == json.loads(body)
