"""Attacks on channel auth: tokens for channels the authorizer refuses, names crafted to
change the signed string, a presence channel passed off as private, tokens used for
another channel or socket, forged presence data. soketi is the judge of every token.

Figures: ``test-output/reliability/security_channel_auth.json``.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import webapp2
import webtest

from handlers.pusher_auth.extension import PusherEndpoints
from tests.support.app_under_attack import app_under_attack
from tests.support.figures import write_figures
from tests.support.subscriber import Subscriber

SUCCEEDED = "pusher_internal:subscription_succeeded"
RESULTS: Counter[str] = Counter()

# Names that try to change ``socket_id:channel[:channel_data]``, the string a token signs.
CRAFTED_CHANNELS = [
    "private-room:1.1",
    'presence-room:{"user_id":"admin"}',
    "private-room\n",
    "private-room\r\nX-Evil: 1",
    "private-room\x00",
    "private-room ",
    " private-room",
    "private-r\u043eom",  # a Cyrillic o
    "pr\u0456vate-room",  # a Cyrillic i
    "private-room%3A1.1",
    "#server-to-user-x:y",
    "private-" + "a" * 200,
]
CRAFTED_SOCKET_IDS = ["1.1:private-room", "1.1\n", "1.1 ", "1 .1", "-1.1", "1.1.1", "\u0661.\u0661", ""]


@pytest.fixture(scope="module")
def endpoints():
    """Endpoints signing for the test soketi; the authorizer allows ``private-room*`` only."""
    from pusherlib import Pusher
    from tests.support.soketi import Soketi

    server = Soketi(name="soketi-security")
    server.start()
    endpoints = PusherEndpoints(Pusher.from_url(server.url))
    endpoints.soketi = server

    @endpoints.authorizer
    def may_join(request, channel_name, socket_id):
        return channel_name.startswith("private-room") or request.cookies.get("user") == "member"

    @endpoints.channel_data
    def member(request, channel_name, socket_id):
        return {"user_id": "member", "user_info": {"role": "guest"}}

    yield endpoints
    server.stop()
    write_figures("security_channel_auth", {"attacks": dict(RESULTS), "tried": sum(RESULTS.values())})


@pytest.fixture
def app(endpoints):
    return webtest.TestApp(webapp2.WSGIApplication(endpoints.routes()))


@pytest.fixture
def connection(endpoints):
    with Subscriber(endpoints.soketi.ws_url) as subscriber:
        yield subscriber


def auth(app, socket_id: str, channel: str, **extra: str):
    fields = {"socket_id": socket_id, "channel_name": channel, **extra}
    return app.post("/pusher/auth", fields, expect_errors=True)


def has_token(answer: object) -> bool:
    """Whether a JSON answer carries an ``auth`` token anywhere (single or batch)."""
    if isinstance(answer, dict):
        return "auth" in answer or any(has_token(value) for value in answer.values())
    return False


def judged(subscriber: Subscriber, attack: str, channel: str, answer: dict) -> dict:
    """Subscribe with ``answer``; soketi must refuse it."""
    reply = subscriber.subscribe(channel, answer)
    RESULTS[f"{attack}: soketi {'accepted' if reply['event'] == SUCCEEDED else 'refused'}"] += 1
    return reply


def test_a_channel_the_authorizer_refuses_gets_no_token(app):
    for channel in ("private-other", "presence-room", "private-encrypted-room"):
        response = auth(app, "1.1", channel)
        RESULTS[f"refused channel: {response.status_int}"] += 1
        assert response.status_int == 403 and "auth" not in response.json


def test_a_batch_gives_tokens_only_for_the_channels_allowed(app):
    fields = {"socket_id": "1.1", "channel_name[0]": "private-room", "channel_name[1]": "private-other"}
    fields["channel_name[2]"] = "presence-room"
    answer = app.post("/pusher/auth", fields).json
    assert answer["private-room"]["status"] == 200 and "auth" in answer["private-room"]["data"]
    for channel in ("private-other", "presence-room"):
        RESULTS[f"refused channel in a batch: {answer[channel]['status']}"] += 1
        assert answer[channel] == {"status": 403}


@pytest.mark.parametrize("channel", CRAFTED_CHANNELS, ids=repr)
def test_names_that_change_the_signed_string_are_refused(app, channel):
    single = auth(app, "1.1", channel)
    in_batch = app.post("/pusher/auth", {"socket_id": "1.1", "channel_name[0]": channel}, expect_errors=True)
    RESULTS[f"crafted channel name: {single.status_int}"] += 1
    assert single.status_int == 400 and "auth" not in single.json
    assert not has_token(in_batch.json)


@pytest.mark.parametrize("socket_id", CRAFTED_SOCKET_IDS, ids=repr)
def test_crafted_socket_ids_are_refused(app, socket_id):
    response = auth(app, socket_id, "private-room")
    RESULTS[f"crafted socket id: {response.status_int}"] += 1
    assert response.status_int == 400 and "auth" not in response.json


def test_a_presence_channel_passed_off_as_private_is_refused(app, connection):
    """A token for ``private-room`` does not open ``presence-room``, with or without a
    made-up member, nor another private channel."""
    token = auth(app, connection.socket_id, "private-room").json
    forged_member = {**token, "channel_data": json.dumps({"user_id": "admin"})}
    assert (
        judged(connection, "private token on a presence channel", "presence-room", token)["event"]
        != SUCCEEDED
    )
    reply = judged(connection, "private token + forged member on presence", "presence-room", forged_member)
    assert reply["event"] != SUCCEEDED
    assert judged(connection, "token for another channel", "private-room2", token)["event"] != SUCCEEDED
    assert connection.subscribe("private-room", token)["event"] == SUCCEEDED


def test_a_token_is_good_for_its_socket_only(app, endpoints, connection):
    token = auth(app, connection.socket_id, "private-room").json
    with Subscriber(endpoints.soketi.ws_url) as thief:
        assert judged(thief, "token of another socket", "private-room", token)["event"] != SUCCEEDED


def test_presence_data_sent_by_the_client_is_ignored_and_cannot_be_forged(app, connection):
    app.set_cookie("user", "member")
    answer = auth(app, connection.socket_id, "presence-room", channel_data='{"user_id": "admin"}').json
    assert json.loads(answer["channel_data"])["user_id"] == "member"
    forged = {**answer, "channel_data": json.dumps({"user_id": "admin", "user_info": {"role": "owner"}})}
    assert (
        judged(connection, "presence token with altered member", "presence-room", forged)["event"]
        != SUCCEEDED
    )
    assert connection.subscribe("presence-room", answer)["event"] == SUCCEEDED


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/pusher/auth", {"socket_id": "1.1", "channel_name": "private-a"}),
        ("/pusher/auth", {"socket_id": "1.1", "channel_name": "presence-a"}),
        ("/pusher/auth", {"socket_id": "1.1", "channel_name": "private-encrypted-a"}),
        ("/pusher/auth", {"socket_id": "1.1", "channel_name[0]": "private-a"}),
        ("/pusher/user-auth", {"socket_id": "1.1"}),
    ],
)
def test_the_app_without_demo_mode_signs_nothing(path, fields):
    """``main.py`` installs no authorizer unless ``DEMO_MODE=1``: every request is refused."""
    with app_under_attack("http://key:secret@127.0.0.1:1/apps/1") as target:
        target.app.set_cookie("user", "alice")  # the demo's cookie means nothing here
        response = target.app.post(path, fields, expect_errors=True)
    RESULTS[f"no authorizer: {response.status_int}"] += 1
    assert response.status_int == 403
    assert not has_token(response.json)
