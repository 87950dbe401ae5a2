"""Every branch of POST /pusher/auth and /pusher/user-auth, through WebTest.

soketi judges the tokens in test_channel_auth_soketi.py; here the shapes, statuses and
messages are checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
import webapp2

from pusherlib import encryption
from pusherlib.endpoints import PusherHooks, answer_channel_auth
from tests.support.endpoints import KEY, MASTER_KEY, SECRET, offline_endpoints, webtest_app

SOCKET = "1234.5678"


@pytest.fixture
def endpoints():
    return offline_endpoints(encryption_master_key_base64=MASTER_KEY)


@pytest.fixture
def app(endpoints):
    return webtest_app(endpoints)


@pytest.fixture
def allow_all(endpoints):
    calls = []

    @endpoints.authorizer
    def may_join(request, channel_name, socket_id):
        calls.append((request, channel_name, socket_id))
        return not channel_name.startswith("private-forbidden-")

    return calls


def auth(app, status=200, **fields):
    return app.post("/pusher/auth", fields, status=status).json


def user_auth(app, status=200, **fields):
    return app.post("/pusher/user-auth", fields, status=status).json


def batch(app, channels, status=200, socket_id=SOCKET):
    fields = {"socket_id": socket_id, **{f"channel_name[{i}]": name for i, name in enumerate(channels)}}
    return app.post("/pusher/auth", fields, status=status).json


def assert_token(answer, signed: str):
    """``answer["auth"]`` is ``key:HMAC-SHA256(secret, signed)``, as Pusher documents it."""
    key, _, signature = answer["auth"].partition(":")
    assert key == KEY
    assert signature == hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()


# -- no authorizer: everything refused --------------------------------------------------


@pytest.mark.parametrize("channel", ["private-a", "presence-a", "private-encrypted-a"])
def test_without_an_authorizer_every_channel_is_refused(app, channel):
    assert "may not join" in auth(app, 403, socket_id=SOCKET, channel_name=channel)["error"]


def test_without_an_authorizer_a_batch_is_refused_channel_by_channel(app):
    assert batch(app, ["private-a", "presence-b"], status=403) == {
        "private-a": {"status": 403},
        "presence-b": {"status": 403},
    }


def test_without_an_authorizer_user_auth_is_refused(app, endpoints):
    endpoints.user_data(lambda request, socket_id: {"id": "alice"})
    assert "not enabled" in user_auth(app, 403, socket_id=SOCKET)["error"]


# -- private, presence, encrypted -------------------------------------------------------


def test_private_channel_gets_an_auth_token_only(app, allow_all):
    answer = auth(app, socket_id=SOCKET, channel_name="private-a")
    assert set(answer) == {"auth"}
    assert_token(answer, f"{SOCKET}:private-a")
    request, channel, socket_id = allow_all[0]
    assert isinstance(request, webapp2.Request) and (channel, socket_id) == ("private-a", SOCKET)


def test_answers_are_json_and_not_cached(app, allow_all):
    response = app.post("/pusher/auth", {"socket_id": SOCKET, "channel_name": "private-a"})
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"


def test_presence_channel_data_defaults_to_the_socket_id(app, allow_all):
    answer = auth(app, socket_id=SOCKET, channel_name="presence-room")
    assert set(answer) == {"auth", "channel_data"}
    assert json.loads(answer["channel_data"]) == {"user_id": SOCKET}


def test_presence_channel_data_comes_from_the_provider(app, endpoints, allow_all):
    seen = []

    @endpoints.channel_data
    def member(request, channel_name, socket_id):
        seen.append((channel_name, socket_id))
        return {"user_id": "alice", "user_info": {"name": "Alice"}}

    answer = auth(app, socket_id=SOCKET, channel_name="presence-room")
    assert json.loads(answer["channel_data"]) == {"user_id": "alice", "user_info": {"name": "Alice"}}
    assert seen == [("presence-room", SOCKET)]


def test_presence_extra_keys_become_user_info_as_in_flask_pusher(app, endpoints, allow_all):
    endpoints.channel_data(lambda request, channel_name, socket_id: {"name": "Ann"})
    answer = auth(app, socket_id=SOCKET, channel_name="presence-room")
    assert json.loads(answer["channel_data"]) == {"user_id": SOCKET, "user_info": {"name": "Ann"}}


def test_presence_user_info_is_optional(app, endpoints, allow_all):
    endpoints.channel_data(lambda request, channel_name, socket_id: {"user_id": 7})
    answer = auth(app, socket_id=SOCKET, channel_name="presence-room")
    assert json.loads(answer["channel_data"]) == {"user_id": 7}


def test_a_provider_giving_a_bad_user_id_is_a_server_error_with_a_message(app, endpoints, allow_all):
    endpoints.channel_data(lambda request, channel_name, socket_id: {"user_id": ""})
    assert "user_id" in auth(app, 500, socket_id=SOCKET, channel_name="presence-room")["error"]


def test_encrypted_channel_gets_the_shared_secret(app, allow_all):
    answer = auth(app, socket_id=SOCKET, channel_name="private-encrypted-vault")
    assert set(answer) == {"auth", "shared_secret"}
    expected = encryption.shared_secret("private-encrypted-vault", base64.b64decode(MASTER_KEY))
    assert base64.b64decode(answer["shared_secret"]) == expected


def test_encrypted_channel_without_a_master_key_is_a_404_with_a_message():
    """Any client can ask for one: it is a feature this server lacks, not a server error."""
    endpoints = offline_endpoints()
    endpoints.authorizer(lambda request, channel_name, socket_id: True)
    app = webtest_app(endpoints)
    error = auth(app, 404, socket_id=SOCKET, channel_name="private-encrypted-vault")["error"]
    assert "encrypted channels are not enabled" in error


@pytest.mark.parametrize("verdict", [False, None, "yes", 1])
def test_only_true_from_the_authorizer_lets_a_socket_in(app, endpoints, verdict):
    endpoints.authorizer(lambda request, channel_name, socket_id: verdict)
    assert auth(app, 403, socket_id=SOCKET, channel_name="private-a")["error"]


def test_the_authorizer_sees_the_request(app, endpoints):
    endpoints.authorizer(lambda request, channel_name, socket_id: request.cookies.get("user") == "alice")
    auth(app, 403, socket_id=SOCKET, channel_name="private-a")
    app.set_cookie("user", "alice")
    assert_token(auth(app, socket_id=SOCKET, channel_name="private-a"), f"{SOCKET}:private-a")


# -- bad input: 400 with a message ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"channel_name": "private-a"}, "socket_id is required"),
        ({"socket_id": "", "channel_name": "private-a"}, "socket_id is required"),
        ({"socket_id": "abc", "channel_name": "private-a"}, "invalid socket_id"),
        ({"socket_id": "1.2.3", "channel_name": "private-a"}, "invalid socket_id"),
        ({"socket_id": "1.2\n", "channel_name": "private-a"}, "invalid socket_id"),
        ({"socket_id": SOCKET}, "channel_name is required"),
        ({"socket_id": SOCKET, "channel_name": ""}, "channel name must not be empty"),
        ({"socket_id": SOCKET, "channel_name": "private-a b"}, "invalid channel name"),
        ({"socket_id": SOCKET, "channel_name": "private-" + "x" * 160}, "at most 164"),
        ({"socket_id": SOCKET, "channel_name": "news"}, "not a private- or presence- channel"),
        ({"socket_id": SOCKET, "channel_name": "#server-to-user-bob"}, "not a private- or presence-"),
        ({"socket_id": SOCKET, "channel_name": "private-a", "channel_name[0]": "private-b"}, "not both"),
    ],
)
def test_bad_auth_requests_get_400_with_a_message(app, allow_all, fields, message):
    assert message in auth(app, 400, **fields)["error"]
    assert allow_all == []  # the authorizer never sees a malformed request


def test_bad_input_is_400_even_without_an_authorizer(app):
    assert "socket_id" in auth(app, 400, socket_id="x", channel_name="private-a")["error"]
    assert "socket_id" in user_auth(app, 400)["error"]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_allowed(app, method):
    getattr(app, method)("/pusher/auth", status=405)
    getattr(app, method)("/pusher/user-auth", status=405)


# -- batch auth (pusher-js-auth) --------------------------------------------------------


def test_batch_answers_each_channel(app, endpoints, allow_all):
    endpoints.channel_data(lambda request, channel_name, socket_id: {"user_id": "alice"})
    answers = batch(
        app,
        ["private-a", "presence-room", "private-encrypted-vault", "private-forbidden-x", "news", "bad name"],
    )
    assert answers["private-a"]["status"] == 200 and set(answers["private-a"]["data"]) == {"auth"}
    presence = answers["presence-room"]["data"]
    assert json.loads(presence["channel_data"]) == {"user_id": "alice"}
    assert set(answers["private-encrypted-vault"]["data"]) == {"auth", "shared_secret"}
    assert answers["private-forbidden-x"] == {"status": 403}
    assert answers["news"]["status"] == 400 and "needs no auth" in answers["news"]["error"]
    assert answers["bad name"]["status"] == 400 and "invalid channel name" in answers["bad name"]["error"]
    assert [channel for _, channel, _ in allow_all] == [
        "private-a",
        "presence-room",
        "private-encrypted-vault",
        "private-forbidden-x",
    ]


def test_batch_entries_match_single_answers(app, allow_all):
    single = auth(app, socket_id=SOCKET, channel_name="private-a")
    assert batch(app, ["private-a"]) == {"private-a": {"status": 200, "data": single}}


def test_batch_follows_the_indices_not_the_field_order(app, allow_all):
    fields = [("socket_id", SOCKET), ("channel_name[1]", "private-b"), ("channel_name[0]", "private-a")]
    app.post("/pusher/auth", fields)
    assert [channel for _, channel, _ in allow_all] == ["private-a", "private-b"]


def test_batch_with_a_bad_socket_id_is_400(app, allow_all):
    assert "invalid socket_id" in batch(app, ["private-a"], status=400, socket_id="nope")["error"]


def test_batch_of_too_many_channels_is_400(app, allow_all):
    assert "at most 100" in batch(app, [f"private-{i}" for i in range(101)], status=400)["error"]


# -- user auth (pusher:signin) ----------------------------------------------------------


def test_user_auth_signs_in_the_user_the_provider_names(app, endpoints, allow_all):
    @endpoints.user_data
    def signed_in(request, socket_id):
        return {"id": "alice", "user_info": {"name": "Alice"}, "watchlist": ["bob"]}

    answer = user_auth(app, socket_id=SOCKET)
    assert set(answer) == {"auth", "user_data"}
    assert_token(answer, f"{SOCKET}::user::{answer['user_data']}")
    assert json.loads(answer["user_data"]) == {
        "id": "alice",
        "user_info": {"name": "Alice"},
        "watchlist": ["bob"],
    }


def test_user_auth_without_a_user_data_provider_is_refused(app, allow_all):
    assert user_auth(app, 403, socket_id=SOCKET)["error"]


def test_user_auth_when_nobody_is_signed_in_is_refused(app, endpoints, allow_all):
    endpoints.user_data(lambda request, socket_id: None)
    assert "nobody is signed in" in user_auth(app, 403, socket_id=SOCKET)["error"]


@pytest.mark.parametrize("socket_id", ["", "1", "a.b", "12.34.56"])
def test_user_auth_with_a_bad_socket_id_is_400(app, endpoints, allow_all, socket_id):
    endpoints.user_data(lambda request, socket_id: {"id": "alice"})
    assert "socket_id" in user_auth(app, 400, socket_id=socket_id)["error"]


def test_user_auth_with_a_provider_giving_no_id_is_a_server_error_with_a_message(app, endpoints, allow_all):
    endpoints.user_data(lambda request, socket_id: {"name": "Alice"})
    assert "id" in user_auth(app, 500, socket_id=SOCKET)["error"]


# -- the extension's shape --------------------------------------------------------------


def test_routes_live_under_the_chosen_prefix():
    endpoints = offline_endpoints(prefix="/realtime/")
    endpoints.authorizer(lambda request, channel_name, socket_id: True)
    app = webtest_app(endpoints)
    fields = {"socket_id": SOCKET, "channel_name": "private-a"}
    assert_token(app.post("/realtime/auth", fields).json, f"{SOCKET}:private-a")
    app.post("/pusher/auth", fields, status=404)


def test_the_core_works_without_webapp2(endpoints):
    """A Flask or Django view passes its form (any mapping) and its request object."""
    client, hooks = endpoints.client, PusherHooks()
    hooks.authorizer(lambda request, channel_name, socket_id: request == "flask request")
    form = {"socket_id": SOCKET, "channel_name": "private-a"}
    reply = answer_channel_auth(client, hooks, "flask request", form)
    assert reply.status == 200 and reply.body == client.authenticate("private-a", SOCKET)
    assert answer_channel_auth(client, hooks, "other request", form).status == 403


def test_the_endpoints_core_imports_no_web_framework_and_nothing_of_the_app():
    """pusherlib's endpoints ship in its wheel: they must stand without the app around them
    (run from the repository's root, where the app's packages could be imported)."""
    import subprocess
    import sys

    from tests.support.processes import ROOT

    outside = (
        "webapp2",
        "webob",
        "flask",
        "werkzeug",
        "django",
        "handlers",
        "access",
        "pushqueue",
        "settings",
    )
    code = (
        "import sys, pusherlib.endpoints, pusherlib.integrations.shared;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {outside!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
