"""The Flask extension (Flask-Pusher's names) with real Flask; soketi judges its tokens."""

from __future__ import annotations

import json
import time

import flask
import pytest

from pusherlib.integrations.flask import Pusher
from pusherlib.signing import webhook_signature
from tests.support.soketi import unique

SUCCEEDED = "pusher_internal:subscription_succeeded"
MASTER_KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="


@pytest.fixture
def app(soketi):
    app = flask.Flask(__name__)
    app.config.update(
        PUSHER_APP_ID=soketi.app_id,
        PUSHER_KEY=soketi.key,
        PUSHER_SECRET=soketi.secret,
        PUSHER_HOST="127.0.0.1",
        PUSHER_PORT=str(soketi.port),  # Flask-Pusher's README writes the port as a string
        PUSHER_SSL=False,
        PUSHER_ENCRYPTION_MASTER_KEY_BASE64=MASTER_KEY,
        PUSHER_MAX_BODY_BYTES=4096,
    )
    return app


@pytest.fixture
def pusher(app):
    pusher = Pusher(app)
    seen: dict[str, list] = {"presence": [], "events": []}

    @pusher.auth
    def may_join(channel_name, socket_id):
        return "forbidden" not in channel_name and flask.request.cookies.get("user") is not None

    @pusher.channel_data
    def member(channel_name, socket_id):
        return {"user_id": flask.request.cookies["user"], "name": flask.request.cookies["user"].title()}

    @pusher.user_data
    def signed_in(socket_id):
        return {"id": flask.request.cookies["user"]}

    @pusher.webhooks.presence
    def presence_webhook():
        seen["presence"].append(flask.request.get_json())

    @pusher.on("client_event")
    def client_event(event):
        seen["events"].append(event)

    pusher.seen = seen
    return pusher


@pytest.fixture
def http(app, pusher):
    client = app.test_client()
    client.set_cookie("user", "alice")
    return client


def test_the_client_is_configured_from_flask_pusher_names(app, pusher, soketi, subscriber):
    assert app.extensions["pusher"] is pusher.client
    channel = unique("flask-")
    subscriber.subscribe(channel)
    pusher.trigger(channel, "e", {"via": "extension"})  # Flask-Pusher forwards client methods
    assert json.loads(subscriber.event("e", channel)["data"]) == {"via": "extension"}


def test_soketi_accepts_private_presence_and_encrypted_answers(http, subscriber):
    for channel in (unique("private-flask-"), unique("presence-flask-"), unique("private-encrypted-flask-")):
        answer = http.post("/pusher/auth", data={"socket_id": subscriber.socket_id, "channel_name": channel})
        assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
        reply = subscriber.subscribe(channel, answer.get_json())
        assert reply["event"] == SUCCEEDED, reply
        if channel.startswith("presence-"):
            assert json.loads(reply["data"])["presence"]["hash"] == {"alice": {"name": "Alice"}}


def test_batch_auth_answers_each_channel(http, subscriber):
    channels = [unique("private-a-"), unique("presence-b-"), "private-forbidden-c"]
    fields = {"socket_id": subscriber.socket_id, **{f"channel_name[{i}]": c for i, c in enumerate(channels)}}
    answers = http.post("/pusher/auth", data=fields).get_json()
    assert answers["private-forbidden-c"] == {"status": 403}
    for channel in channels[:2]:
        assert subscriber.subscribe(channel, answers[channel]["data"])["event"] == SUCCEEDED


def test_user_auth_signs_in_on_soketi(http, subscriber):
    answer = http.post("/pusher/user-auth", data={"socket_id": subscriber.socket_id}).get_json()
    assert subscriber.signin(answer)["event"] == "pusher:signin_success"


def test_deny_by_default_and_refusals(app, soketi, subscriber):
    bare = flask.Flask("bare")
    bare.config.update(PUSHER_URL=soketi.url)
    Pusher(bare)
    client = bare.test_client()
    fields = {"socket_id": subscriber.socket_id, "channel_name": "private-x"}
    assert client.post("/pusher/auth", data=fields).status_code == 403
    assert client.post("/pusher/user-auth", data={"socket_id": subscriber.socket_id}).status_code == 403
    assert client.post("/pusher/auth", data={"channel_name": "private-x"}).status_code == 400


def test_an_anonymous_visitor_is_refused(app, pusher, subscriber):
    anonymous = app.test_client()
    fields = {"socket_id": subscriber.socket_id, "channel_name": "private-room"}
    assert anonymous.post("/pusher/auth", data=fields).status_code == 403


def test_a_body_above_the_limit_gets_413(http):
    assert http.post("/pusher/auth", data={"socket_id": "1.1", "channel_name": "x" * 5000}).status_code == 413
    assert http.post("/pusher/webhooks", data=b"{" + b" " * 5000 + b"}").status_code == 413


def signed(soketi, payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "X-Pusher-Key": soketi.key,
        "X-Pusher-Signature": webhook_signature(soketi.secret.encode(), body),
    }


def test_webhooks_run_the_hooks_once_and_refuse_forgeries(http, pusher, soketi):
    events = [{"name": "member_added", "channel": "presence-room", "user_id": "bob"}]
    body, headers = signed(soketi, {"time_ms": int(time.time() * 1000), "events": events})
    answer = http.post("/pusher/events/presence", data=body, headers=headers)
    assert answer.status_code == 200 and answer.get_json() == {"ok": True, "events": 1}
    assert pusher.seen["presence"] == [{"time_ms": json.loads(body)["time_ms"], "events": events}]
    assert http.post("/pusher/events/presence", data=body, headers=headers).status_code == 401  # replay
    forged = {**headers, "X-Pusher-Signature": "0" * 64}
    assert http.post("/pusher/webhooks", data=body, headers=forged).status_code == 401
    assert len(pusher.seen["presence"]) == 1


def test_encrypted_client_events_reach_the_hook_decrypted(http, pusher, soketi):
    from pusherlib import encryption

    channel = "private-encrypted-notes"
    sealed = encryption.encrypt(channel, "psst", pusher.client._master_key)
    events = [{"name": "client_event", "channel": channel, "event": "client-x", "data": sealed}]
    body, headers = signed(soketi, {"time_ms": int(time.time() * 1000), "events": events})
    assert http.post("/pusher/webhooks", data=body, headers=headers).status_code == 200
    assert pusher.seen["events"][0]["data"] == "psst"


def test_routes_move_with_flask_pusher_names(soketi, subscriber):
    app = flask.Flask("moved")
    app.config.update(PUSHER_URL=soketi.url, PUSHER_AUTH="/channel-auth")
    pusher = Pusher(url_prefix="/rt")
    pusher.auth(lambda channel_name, socket_id: True)
    pusher.init_app(app)  # the factory pattern
    fields = {"socket_id": subscriber.socket_id, "channel_name": unique("private-moved-")}
    answer = app.test_client().post("/rt/channel-auth", data=fields)
    assert subscriber.subscribe(fields["channel_name"], answer.get_json())["event"] == SUCCEEDED


def test_the_core_and_the_adapters_do_not_import_webapp2():
    import subprocess
    import sys

    code = (
        "import sys, pusherlib.integrations.flask, pusherlib.endpoints;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('webapp2', 'webob')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_a_group_handler_taking_one_argument_gets_the_decrypted_webhook(http, pusher, soketi):
    from pusherlib import encryption

    received = []
    pusher.webhooks.client(received.append)
    channel = "private-encrypted-room"
    sealed = encryption.encrypt(channel, "hi", pusher.client._master_key)
    events = [{"name": "client_event", "channel": channel, "event": "client-x", "data": sealed}]
    body, headers = signed(soketi, {"time_ms": int(time.time() * 1000), "events": events})
    assert http.post("/pusher/events/client", data=body, headers=headers).status_code == 200
    assert received[0]["events"][0]["data"] == "hi"


def test_event_data_is_encoded_like_the_app_encodes_json(pusher, subscriber):
    import datetime
    import decimal

    channel = unique("flask-json-")
    subscriber.subscribe(channel)
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    pusher.trigger(channel, "e", {"at": when, "price": decimal.Decimal("1.50")})
    assert json.loads(subscriber.event("e", channel)["data"]) == {
        "at": "Fri, 02 Jan 2026 03:04:05 GMT",
        "price": "1.50",
    }


def test_a_chunked_body_above_the_limit_gets_413_not_a_cut_body(http):
    import io

    chunked = {
        "headers": {"Transfer-Encoding": "chunked"},
        "environ_overrides": {"wsgi.input_terminated": True},
    }
    form = b"socket_id=1.1&channel_name=private-" + b"x" * 5000
    answer = http.post(
        "/pusher/auth",
        input_stream=io.BytesIO(form),
        content_type="application/x-www-form-urlencoded",
        **chunked,
    )
    assert answer.status_code == 413
    assert http.post("/pusher/webhooks", input_stream=io.BytesIO(b" " * 5000), **chunked).status_code == 413
