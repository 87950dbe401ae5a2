"""The demo page's handlers with WebTest: configuration for pusher-js, the name cookie,
static and vendor files, and no demo at all without DEMO_MODE."""

from __future__ import annotations

import pytest
import webapp2
import webtest

from handlers import demo
from handlers.application import create_services
from settings import Settings
from tests.support.processes import free_port

SOKETI_URL = "http://app-key:app-secret@127.0.0.1:6001/apps/1"


def settings_for(demo_mode: bool = True, **env: str) -> Settings:
    base = {
        "GOOGLE_CLOUD_PROJECT": "p",
        "DEMO_MODE": "1" if demo_mode else "0",
        "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",
    }
    return Settings.from_env({**base, **(env or {"PUSHER_URL": SOKETI_URL})})


@pytest.fixture
def app() -> webtest.TestApp:
    return webtest.TestApp(webapp2.WSGIApplication(demo.routes(create_services(settings_for()))))


def test_the_page_and_its_files_are_served(app):
    page = app.get("/")
    assert page.content_type == "text/html"
    assert '<script src="/static/vendor/pusher.min.js">' in page.text
    assert app.get("/static/demo.js").content_type == "text/javascript"
    assert app.get("/static/demo.css").content_type == "text/css"
    vendor = app.get("/static/vendor/pusher.min.js")
    assert vendor.content_type == "text/javascript" and b"Pusher" in vendor.body


@pytest.mark.parametrize(
    "path", ["/static/nothing.js", "/static/vendor/pusher.js", "/static/..%2Fsettings.py", "/static/.hidden"]
)
def test_only_known_files_are_served(app, path):
    assert app.get(path, expect_errors=True).status_int == 404


def test_choosing_a_name_sets_the_user_cookie_the_config_reports(app):
    assert app.get("/demo/config.json").json["user"] is None
    answer = app.post("/demo/name", {"name": " ada_l-2 "})
    assert answer.json == {"user": "ada_l-2"}
    assert "user=ada_l-2" in answer.headers["Set-Cookie"]
    assert app.get("/demo/config.json").json["user"] == "ada_l-2"


@pytest.mark.parametrize("name", ["", "two words", "x" * 25, "émile", "a;b"])
def test_a_name_pusher_cannot_use_is_refused_and_sets_nothing(app, name):
    answer = app.post("/demo/name", {"name": name}, expect_errors=True)
    assert answer.status_int == 400
    assert "letters, digits" in answer.json["error"]
    assert "Set-Cookie" not in answer.headers


def test_the_config_names_the_tabs_user_from_the_header_before_the_cookie(app):
    """The page sends its tab's user in the header the config names; the cookie is the fallback."""
    app.post("/demo/name", {"name": "ada"})
    config = app.get("/demo/config.json").json
    assert (config["user"], config["userHeader"]) == ("ada", "X-Demo-User")
    assert app.get("/demo/config.json", headers={"X-Demo-User": "grace"}).json["user"] == "grace"


def test_soketi_is_reached_on_its_own_host_and_port(app):
    config = app.get("/demo/config.json").json
    assert config["key"] == "app-key"
    assert (config["wsHost"], config["wsPort"], config["forceTLS"]) == ("127.0.0.1", 6001, False)
    assert "cluster" not in config
    assert config["pushPath"] == "/push/presence-lobby/message"


@pytest.mark.parametrize(
    ("env", "cluster"),
    [
        ({"PUSHER_URL": "https://k:s@api-eu.pusher.com/apps/1"}, "eu"),
        ({"PUSHER_URL": "https://k:s@api.pusherapp.com/apps/1"}, "mt1"),
        ({"PUSHER_APP_ID": "1", "PUSHER_KEY": "k", "PUSHER_SECRET": "s", "PUSHER_CLUSTER": "ap1"}, "ap1"),
        ({"PUSHER_APP_ID": "1", "PUSHER_KEY": "k", "PUSHER_SECRET": "s"}, "mt1"),
    ],
)
def test_pusher_itself_is_reached_by_cluster(env, cluster):
    config = demo.browser_config(settings_for(**env))
    assert config["cluster"] == cluster and config["forceTLS"] is True
    assert "wsHost" not in config


def test_without_demo_mode_there_is_no_demo():
    assert demo.routes(create_services(settings_for(demo_mode=False))) == []


def test_the_outage_control_says_when_no_fault_proxy_is_there():
    """Outside `make dev` (no fault proxy in front of Pusher) the page is told so, not a 500."""
    nothing_there = f"http://app-key:app-secret@127.0.0.1:{free_port()}/apps/1"
    services = create_services(settings_for(PUSHER_URL=nothing_there))
    app = webtest.TestApp(webapp2.WSGIApplication(demo.routes(services)))
    for answer in (
        app.get("/demo/outage", status=409),
        app.post("/demo/outage", {"mode": "outage"}, status=409),
    ):
        assert "no demo fault proxy" in answer.json["error"]
    assert "mode is one of" in app.post("/demo/outage", {"mode": "x"}, status=400).json["error"]
