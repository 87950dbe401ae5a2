"""The demo authorizer (DEMO_MODE=1): the ``X-Demo-User`` header (a browser tab's user), else the
``user`` cookie, names the user."""

from __future__ import annotations

import json

import pytest
import webapp2
import webtest

import pushqueue
from handlers import pusher_endpoints
from handlers.application import create_app, create_services
from handlers.demo_auth import install_demo_auth
from settings import Settings
from tests.support.endpoints import MASTER_KEY, offline_endpoints, webtest_app

SOCKET = "1234.5678"


@pytest.fixture
def app():
    endpoints = offline_endpoints(encryption_master_key_base64=MASTER_KEY)
    install_demo_auth(endpoints)
    return webtest_app(endpoints)


@pytest.mark.parametrize("channel", ["private-a", "private-encrypted-a", "presence-lobby"])
def test_a_user_with_the_cookie_may_join_private_and_presence_channels(app, channel):
    app.set_cookie("user", "alice")
    answer = app.post("/pusher/auth", {"socket_id": SOCKET, "channel_name": channel}).json
    assert answer["auth"].startswith("test-key:")


def test_presence_channel_data_carries_the_user(app):
    app.set_cookie("user", "alice")
    answer = app.post("/pusher/auth", {"socket_id": SOCKET, "channel_name": "presence-lobby"}).json
    assert json.loads(answer["channel_data"]) == {"user_id": "alice", "user_info": {"name": "alice"}}


def test_user_auth_signs_in_the_cookie_user(app):
    app.set_cookie("user", "alice")
    answer = app.post("/pusher/user-auth", {"socket_id": SOCKET}).json
    assert json.loads(answer["user_data"]) == {"id": "alice", "user_info": {"name": "alice"}}


@pytest.mark.parametrize("cookie", [None, "", "not a user id"])
def test_without_a_valid_cookie_everything_is_refused(app, cookie):
    if cookie is not None:
        app.set_cookie("user", cookie)
    for channel in ("private-a", "presence-lobby"):
        app.post("/pusher/auth", {"socket_id": SOCKET, "channel_name": channel}, status=403)
    app.post("/pusher/user-auth", {"socket_id": SOCKET}, status=403)
    assert app.post(
        "/pusher/auth", {"socket_id": SOCKET, "channel_name[0]": "private-a"}, status=200
    ).json == {"private-a": {"status": 403}}


def test_the_tabs_header_names_the_user_before_the_browsers_cookie(app):
    """Two tabs of one browser share the cookie; each names its own user with the header."""
    app.set_cookie("user", "alice")
    for user in ("bob", "carol"):
        answer = app.post(
            "/pusher/auth",
            {"socket_id": SOCKET, "channel_name": "presence-lobby"},
            headers={"X-Demo-User": user},
        ).json
        assert json.loads(answer["channel_data"]) == {"user_id": user, "user_info": {"name": user}}
    answer = app.post("/pusher/user-auth", {"socket_id": SOCKET}, headers={"X-Demo-User": "bob"}).json
    assert json.loads(answer["user_data"])["id"] == "bob"


@pytest.mark.parametrize("header", ["", "not a user id", "x" * 300])
def test_an_invalid_header_is_refused_even_with_a_valid_cookie(app, header):
    app.set_cookie("user", "alice")
    app.post(
        "/pusher/auth",
        {"socket_id": SOCKET, "channel_name": "presence-lobby"},
        headers={"X-Demo-User": header},
        status=403,
    )
    app.post("/pusher/user-auth", {"socket_id": SOCKET}, headers={"X-Demo-User": header}, status=403)


@pytest.mark.parametrize(("demo_mode", "status"), [("1", 200), ("0", 403), ("", 403)])
def test_the_apps_route_group_installs_the_demo_authorizer_only_in_demo_mode(demo_mode, status):
    settings = Settings.from_env(
        {
            "PUSHER_URL": "http://test-key:test-secret@127.0.0.1:6001/apps/4242",
            "GOOGLE_CLOUD_PROJECT": "test-project",
            "DEMO_MODE": demo_mode,
            "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",
        }
    )
    app = webtest.TestApp(webapp2.WSGIApplication(pusher_endpoints.routes(create_services(settings))))
    app.set_cookie("user", "alice")
    app.post("/pusher/auth", {"socket_id": SOCKET, "channel_name": "presence-lobby"}, status=status)
    app.post("/pusher/user-auth", {"socket_id": SOCKET}, status=status)


def test_the_apps_endpoints_sign_with_the_processs_one_pusher_client():
    settings = Settings.from_env(
        {
            "PUSHER_URL": "http://test-key:test-secret@127.0.0.1:6001/apps/4242",
            "GOOGLE_CLOUD_PROJECT": "p",
            "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",
        }
    )
    try:
        app = create_app(settings, [pusher_endpoints.routes], app_engine_apis=False)
    finally:
        pushqueue.configure(None)
    endpoints = {route.handler.__self__ for route in app.router.match_routes}
    assert [endpoint.client for endpoint in endpoints] == [app.services.pusher]
