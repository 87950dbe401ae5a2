"""Auth answers judged by soketi: private, presence and encrypted subscriptions, user
sign-in, and what the server then lets through."""

from __future__ import annotations

import base64
import json

import nacl.exceptions
import pytest
from websockets.exceptions import ConnectionClosed

from pusherlib import Pusher
from pusherlib.encryption import decrypt
from tests.support.soketi import unique
from tests.support.subscriber import Subscriber


@pytest.fixture
def impostor(soketi):
    """A client of the same app that signs with the wrong secret."""
    return Pusher.from_url(soketi.url.replace(f":{soketi.secret}@", ":not-the-secret@"))


def test_private_channel(pusher, subscriber):
    channel = unique("private-")
    answer = pusher.authenticate(channel, subscriber.socket_id)
    assert subscriber.subscribe(channel, answer)["event"] == "pusher_internal:subscription_succeeded"
    pusher.trigger(channel, "secret", {"n": 1})
    assert json.loads(subscriber.event("secret", channel)["data"]) == {"n": 1}


def test_soketi_refuses_a_wrong_signature(impostor, subscriber):
    channel = unique("private-")
    refused = subscriber.subscribe(channel, impostor.authenticate(channel, subscriber.socket_id))
    assert refused["event"] == "pusher:subscription_error"


def test_auth_for_another_socket_is_refused(pusher, subscriber, other_subscriber):
    channel = unique("private-")
    answer = pusher.authenticate(channel, other_subscriber.socket_id)
    assert subscriber.subscribe(channel, answer)["event"] == "pusher:subscription_error"


def test_legacy_auth_shapes(pusher, subscriber):
    channel = unique("private-")
    answer = pusher.authenticate_subscription(channel=channel, socket_id=subscriber.socket_id)
    assert answer == pusher[channel].authenticate(subscriber.socket_id)
    assert subscriber.subscribe(channel, answer)["event"] == "pusher_internal:subscription_succeeded"


def test_presence_members_users_info_and_channel_info(pusher, subscriber, other_subscriber):
    channel = unique("presence-")
    first = pusher.authenticate_subscription(
        channel=channel,
        socket_id=subscriber.socket_id,
        custom_data={"user_id": "ana", "user_info": {"name": "Ana", "city": "Zürich"}},
    )
    subscriber.subscribe(channel, first)
    succeeded = other_subscriber.subscribe(
        channel, pusher.authenticate(channel, other_subscriber.socket_id, {"user_id": "ben"})
    )
    assert succeeded["event"] == "pusher_internal:subscription_succeeded"
    presence = json.loads(succeeded["data"])["presence"]
    assert sorted(presence["ids"]) == ["ana", "ben"]
    assert presence["count"] == 2
    assert presence["hash"]["ana"] == {"name": "Ana", "city": "Zürich"}
    added = subscriber.event("pusher_internal:member_added", channel)
    assert json.loads(added["data"])["user_id"] == "ben"

    assert sorted(user["id"] for user in pusher.users_info(channel)["users"]) == ["ana", "ben"]
    info = pusher.channel_info(channel, ["user_count"])
    assert info["occupied"] is True
    assert info["user_count"] == 2


def test_presence_with_a_numeric_user_id(pusher, subscriber):
    channel = unique("presence-")
    answer = pusher.authenticate(channel, subscriber.socket_id, {"user_id": 42})
    succeeded = subscriber.subscribe(channel, answer)
    assert succeeded["event"] == "pusher_internal:subscription_succeeded"
    assert json.loads(succeeded["data"])["presence"]["count"] == 1


def test_encrypted_channel_round_trip(pusher, subscriber):
    channel = unique("private-encrypted-")
    answer = pusher.authenticate(channel, subscriber.socket_id)
    assert subscriber.subscribe(channel, answer)["event"] == "pusher_internal:subscription_succeeded"
    shared_secret = base64.b64decode(answer["shared_secret"])

    data = {"card": "4111 1111", "note": "naïve ✓"}
    pusher.trigger(channel, "sealed", data)
    received = subscriber.event("sealed", channel)["data"]
    assert "4111" not in received and set(json.loads(received)) == {"nonce", "ciphertext"}
    assert json.loads(decrypt(received, shared_secret)) == data

    pusher.trigger_batch([{"channel": channel, "name": "sealed-batch", "data": "plain text"}])
    assert decrypt(subscriber.event("sealed-batch", channel)["data"], shared_secret) == "plain text"


def test_encrypted_data_does_not_open_with_another_channels_secret(pusher, subscriber):
    channel, other = unique("private-encrypted-"), unique("private-encrypted-")
    subscriber.subscribe(channel, pusher.authenticate(channel, subscriber.socket_id))
    pusher.trigger(channel, "sealed", "x")
    wrong_secret = base64.b64decode(pusher.authenticate(other, subscriber.socket_id)["shared_secret"])
    with pytest.raises(nacl.exceptions.CryptoError):
        decrypt(subscriber.event("sealed", channel)["data"], wrong_secret)


def test_user_signin_accepted_and_refused(pusher, impostor, subscriber, other_subscriber):
    user = {"id": unique("user-"), "user_info": {"name": "Ana"}}
    accepted = subscriber.signin(pusher.authenticate_user(subscriber.socket_id, user))
    assert accepted["event"] == "pusher:signin_success"
    assert json.loads(accepted["data"]["user_data"]) == user
    assert (
        other_subscriber.signin(impostor.authenticate_user(other_subscriber.socket_id, user))["event"]
        == "pusher:error"
    )


def test_terminate_user_connections(pusher, soketi, subscriber):
    user_id = unique("user-")
    subscriber.signin(pusher.authenticate_user(subscriber.socket_id, {"id": user_id}))
    channel = unique("bystanders-")
    with Subscriber(soketi.ws_url) as bystander:
        bystander.subscribe(channel)
        pusher.terminate_user_connections(user_id)
        with pytest.raises(ConnectionClosed):
            subscriber.wait_for(lambda message: False)
        pusher.trigger(channel, "still-here", "yes")  # the other connection is untouched
        assert bystander.event("still-here", channel)["data"] == "yes"
