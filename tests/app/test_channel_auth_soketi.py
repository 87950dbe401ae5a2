"""soketi judges every answer of /pusher/auth and /pusher/user-auth: a real websocket
subscribes (private, presence, encrypted, batch) and signs in with them."""

from __future__ import annotations

import base64
import json

import pytest
import webapp2
import webtest

from handlers.pusher_auth.extension import PusherEndpoints
from pusherlib import encryption
from tests.support.subscriber import Subscriber

SUCCEEDED = "pusher_internal:subscription_succeeded"


@pytest.fixture
def endpoints(pusher):
    endpoints = PusherEndpoints(pusher)

    @endpoints.authorizer
    def may_join(request, channel_name, socket_id):
        return "forbidden" not in channel_name

    @endpoints.channel_data
    def member(request, channel_name, socket_id):
        return {"user_id": request.cookies["user"], "user_info": {"name": request.cookies["user"].title()}}

    @endpoints.user_data
    def signed_in(request, socket_id):
        return {"id": request.cookies["user"], "user_info": {"name": "Alice"}}

    return endpoints


@pytest.fixture
def app(endpoints):
    app = webtest.TestApp(webapp2.WSGIApplication(endpoints.routes()))
    app.set_cookie("user", "alice")
    return app


def auth(app, subscriber, channel):
    return app.post("/pusher/auth", {"socket_id": subscriber.socket_id, "channel_name": channel}).json


def test_soketi_accepts_a_private_subscription(app, subscriber):
    assert subscriber.subscribe("private-room", auth(app, subscriber, "private-room"))["event"] == SUCCEEDED


def test_soketi_refuses_an_answer_made_for_another_socket(app, subscriber, other_subscriber):
    stolen = auth(app, other_subscriber, "private-room")
    assert subscriber.subscribe("private-room", stolen)["event"] == "pusher:subscription_error"


def test_soketi_accepts_a_presence_subscription_and_lists_the_member(app, soketi, subscriber):
    reply = subscriber.subscribe("presence-room", auth(app, subscriber, "presence-room"))
    assert reply["event"] == SUCCEEDED
    presence = json.loads(reply["data"])["presence"]
    assert presence["ids"] == ["alice"] and presence["hash"] == {"alice": {"name": "Alice"}}
    app.set_cookie("user", "bob")
    with Subscriber(soketi.ws_url) as bob:
        assert bob.subscribe("presence-room", auth(app, bob, "presence-room"))["event"] == SUCCEEDED
        added = subscriber.event("pusher_internal:member_added", "presence-room")
        assert json.loads(added["data"]) == {"user_id": "bob", "user_info": {"name": "Bob"}}


def test_soketi_accepts_an_encrypted_subscription_and_the_shared_secret_decrypts(app, pusher, subscriber):
    channel = "private-encrypted-vault"
    answer = auth(app, subscriber, channel)
    assert subscriber.subscribe(channel, answer)["event"] == SUCCEEDED
    pusher.trigger(channel, "secret", {"code": 42})
    payload = json.loads(subscriber.event("secret", channel)["data"])
    assert "ciphertext" in payload
    decrypted = encryption.decrypt(payload, base64.b64decode(answer["shared_secret"]))
    assert json.loads(decrypted) == {"code": 42}


def test_soketi_accepts_every_channel_of_a_batch(app, subscriber):
    channels = ["private-a", "presence-b", "private-encrypted-c", "private-forbidden-d"]
    fields = {"socket_id": subscriber.socket_id}
    fields.update({f"channel_name[{i}]": name for i, name in enumerate(channels)})
    answers = app.post("/pusher/auth", fields).json
    assert answers["private-forbidden-d"] == {"status": 403}
    for channel in channels[:3]:
        assert answers[channel]["status"] == 200
        assert subscriber.subscribe(channel, answers[channel]["data"])["event"] == SUCCEEDED


def test_soketi_signs_in_with_the_user_auth_answer(app, pusher, subscriber):
    answer = app.post("/pusher/user-auth", {"socket_id": subscriber.socket_id}).json
    reply = subscriber.signin(answer)
    assert reply["event"] == "pusher:signin_success"
    assert json.loads(reply["data"]["user_data"])["id"] == "alice"  # soketi sends data as an object
    subscriber.subscribe("#server-to-user-alice")
    pusher.send_to_user("alice", "note", {"hello": "alice"})
    assert json.loads(subscriber.event("note")["data"]) == {"hello": "alice"}


def test_soketi_refuses_a_signin_answer_made_for_another_socket(app, subscriber, other_subscriber):
    stolen = app.post("/pusher/user-auth", {"socket_id": other_subscriber.socket_id}).json
    assert subscriber.signin(stolen)["event"] == "pusher:error"
