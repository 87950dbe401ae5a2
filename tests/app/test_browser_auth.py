"""Headless Chromium (Debian's package) with pusher-js from npm: the page subscribes to a
private and a presence channel through /pusher/auth (and pusher-js-auth's batch auth),
signs in through /pusher/user-auth, lists the presence members and shows the events the
server sends. The demo authorizer (DEMO_MODE) decides, from the ``user`` cookie."""

from __future__ import annotations

import itertools

import pytest
import webapp2
from playwright.sync_api import expect

from handlers import demo_auth
from handlers.pusher_auth.extension import PusherEndpoints
from pusherlib import Pusher
from tests.browser.pages import page_routes, page_url
from tests.support.appserver import AppServer
from tests.support.chromium import chromium
from tests.support.emulator import running_emulator
from tests.support.processes import free_port
from tests.support.wsgi_thread import WSGIThread

pytestmark = pytest.mark.browser

rooms = itertools.count()


class Site:
    """The test page, pusher-js and the auth endpoints (demo authorizer) on a real server."""

    def __init__(self, soketi):
        self.soketi = soketi
        self.client = Pusher.from_url(soketi.url)
        endpoints = PusherEndpoints(self.client)
        demo_auth.install_demo_auth(endpoints)
        self.auth_requests: list[tuple[str, list[str]]] = []  # (channel, the request's fields)

        @endpoints.authorizer
        def recording_demo_authorizer(request, channel_name, socket_id):
            self.auth_requests.append((channel_name, sorted(request.POST.keys())))
            return demo_auth.may_join(request, channel_name, socket_id)

        self.server = WSGIThread(webapp2.WSGIApplication(page_routes() + endpoints.routes()))

    def page_url(self, room: str, user: str | None, batch: bool = False) -> str:
        return page_url(
            self.server.url, key=self.soketi.key, ws_port=self.soketi.port, room=room, user=user, batch=batch
        )


@pytest.fixture(scope="module")
def site(soketi):
    site = Site(soketi)
    with site.server:
        yield site
    site.client.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_page(browser):
    """Open the test page in a fresh browser context (its own cookies) per call."""
    contexts = []

    def open_(url):
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()


def room_name() -> str:
    return f"browser-{next(rooms)}"


def members(page) -> list[str]:
    return page.locator("#members li").all_inner_texts()


def test_browser_subscribes_lists_members_and_receives_events(site, open_page):
    room = room_name()
    alice = open_page(site.page_url(room, "alice"))
    expect(alice.locator("#private-status")).to_have_text("subscribed")
    expect(alice.locator("#presence-status")).to_have_text("subscribed")
    expect(alice.locator("#signin")).to_have_text("alice")
    expect(alice.locator("#members li")).to_have_text(["alice"])

    bob = open_page(site.page_url(room, "bob"))
    expect(bob.locator("#presence-status")).to_have_text("subscribed")
    expect(bob.locator("#members li")).to_have_text(["alice", "bob"])
    expect(alice.locator("#members li")).to_have_text(["alice", "bob"])

    site.client.trigger(f"private-{room}", "greeting", {"message": "hello private"})
    site.client.trigger(f"presence-{room}", "greeting", {"message": "hello everyone"})
    site.client.send_to_user("alice", "note", {"message": "just for alice"})
    expect(alice.locator("#events li")).to_contain_text(
        [f"private-{room}: hello private", f"presence-{room}: hello everyone", "to me: just for alice"]
    )
    expect(bob.locator("#events li")).to_contain_text([f"presence-{room}: hello everyone"])

    bob.close()
    expect(alice.locator("#members li")).to_have_text(["alice"])


def test_browser_batch_auth_signs_both_channels_in_one_request(site, open_page):
    room = room_name()
    page = open_page(site.page_url(room, "carol", batch=True))
    expect(page.locator("#private-status")).to_have_text("subscribed")
    expect(page.locator("#presence-status")).to_have_text("subscribed")
    expect(page.locator("#members li")).to_have_text(["carol"])
    batch_fields = ["channel_name[0]", "channel_name[1]", "socket_id"]
    assert (f"private-{room}", batch_fields) in site.auth_requests
    assert (f"presence-{room}", batch_fields) in site.auth_requests
    site.client.trigger(f"private-{room}", "greeting", {"message": "batched"})
    expect(page.locator("#events li")).to_contain_text([f"private-{room}: batched"])


@pytest.mark.parametrize("batch", [False, True])
def test_browser_without_the_user_cookie_is_refused(site, open_page, batch):
    page = open_page(site.page_url(room_name(), None, batch=batch))
    refused = "error refused" if batch else "error 403"  # pusher-js-auth drops the status
    expect(page.locator("#private-status")).to_have_text(refused)
    expect(page.locator("#presence-status")).to_have_text(refused)
    expect(page.locator("#signin")).to_have_text("error 403")
    assert members(page) == []


class E2EAppServer(AppServer):
    """The app under the entrypoint's server, plus the Pusher endpoints and the test page
    (``tests.browser.e2e_app``, served under the entrypoint's name: ``rsgi_app``)."""

    def __init__(self, env, **options):
        super().__init__(env, name="app-browser-auth", **options)
        self.argv = [*self.argv[:-1], "tests.browser.e2e_app:" + self.argv[-1].split(":", 1)[1]]


@pytest.fixture(scope="module")
def real_path(soketi):
    """Front end, Cloud Tasks emulator, worker: the app in DEMO_MODE pushing to soketi."""
    app_port = free_port()
    with running_emulator(app_port, name="tasks-emulator-browser-auth") as emulator:
        env = {**emulator.app_env(), "PUSHER_URL": soketi.url, "DEMO_MODE": "1"}
        with E2EAppServer(env, port=app_port) as server:
            yield server, emulator


@pytest.mark.emulator
def test_browser_receives_an_event_sent_through_the_front_end_queue_and_worker(soketi, real_path, open_page):
    server, emulator = real_path
    room = room_name()
    url = page_url(server.url, key=soketi.key, ws_port=soketi.port, room=room, user="dora")
    page = open_page(url)
    expect(page.locator("#private-status")).to_have_text("subscribed")
    expect(page.locator("#presence-status")).to_have_text("subscribed")
    expect(page.locator("#members li")).to_have_text(["dora"])
    expect(page.locator("#signin")).to_have_text("dora")

    for channel in (f"private-{room}", f"presence-{room}"):
        answer = server.client.post(f"/push/{channel}/greeting", json={"message": "through the queue"})
        assert answer.status_code == 202, answer.text
    emulator.wait_until_empty("pusher")
    expect(page.locator("#events li")).to_contain_text(
        [f"private-{room}: through the queue", f"presence-{room}: through the queue"]
    )
