"""The demo page in headless Chromium against the real local stack (`make dev` on free ports):
two users in two browser contexts see each other in the presence list and exchange messages
that travel POST /push -> Cloud Tasks emulator -> worker -> soketi -> pusher-js; two tabs of
ONE browser are two users; a message delivered twice shows once, in order; a bubble follows
its task through a simulated outage."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from pusherlib import Pusher
from tests.support.chromium import chromium
from tests.support.devstack import DevStack
from tests.support.processes import OUTPUT

pytestmark = [pytest.mark.browser, pytest.mark.emulator]

WAIT_MS = 20_000


@pytest.fixture(scope="module")
def stack():
    with DevStack(name="devstack-browser") as devstack:
        yield devstack


@pytest.fixture(scope="module")
def browser():
    with chromium() as headless:
        yield headless


class Visitor:
    """One person: a browser context of its own (own cookies), every URL it requested."""

    def __init__(self, browser: Browser, base_url: str, context: BrowserContext | None = None):
        """``context``: a tab in that browser context (sharing its cookies), else a context of its own."""
        self.context = context or browser.new_context(viewport={"width": 1280, "height": 760})
        self.page: Page = self.context.new_page()
        self.requested: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.goto(base_url + "/")

    def join(self, name: str) -> None:
        self.page.fill("#name-input", name)
        self.page.click("#join")
        expect(self.page.locator("#whoami")).to_have_text(name)

    def say(self, text: str) -> None:
        self.page.fill("#message-input", text)
        self.page.press("#message-input", "Enter")

    def member(self, name: str):
        return self.page.locator(f'#members li[data-user="{name}"]')

    def close(self) -> None:
        self.context.close()


def test_two_users_see_each_other_and_chat_through_the_queue(stack, browser):
    alice, bob = Visitor(browser, stack.app_url), Visitor(browser, stack.app_url)
    try:
        alice.join("alice")
        bob.join("bob")
        for visitor, other in ((alice, "bob"), (bob, "alice")):
            expect(visitor.member(other)).to_be_visible(timeout=WAIT_MS)
        expect(alice.page.locator("#member-count")).to_have_text("2")

        alice.say("hello bob, through the queue")
        received = bob.page.locator(".message:not(.mine) .text")
        expect(received).to_have_text(["hello bob, through the queue"], timeout=WAIT_MS)
        own_status = alice.page.locator(".message.mine .status")
        expect(own_status).to_have_text(re.compile("delivered"), timeout=WAIT_MS)

        bob.say("hi alice")
        expect(alice.page.locator(".message:not(.mine) .text")).to_have_text(["hi alice"], timeout=WAIT_MS)
        expect(bob.page.locator(".message.mine .status")).to_have_text(
            re.compile("delivered"), timeout=WAIT_MS
        )
        # The task view lists this process's tasks, other tests' too (the stack is shared).
        expect(alice.page.locator('#tasks .badge[data-outcome="delivered"]').first).to_be_visible()

        OUTPUT.mkdir(exist_ok=True)
        alice.page.screenshot(path=str(OUTPUT / "demo-alice.png"))
        bob.page.screenshot(path=str(OUTPUT / "demo-bob.png"))

        local = (stack.app_url, f"ws://127.0.0.1:{stack.ports['proxy']}")
        for visitor in (alice, bob):
            assert any(url.endswith("/static/vendor/pusher.min.js") for url in visitor.requested)
            assert [url for url in visitor.requested if not url.startswith(local)] == []

        bob.close()
        expect(alice.member("bob")).to_have_count(0, timeout=WAIT_MS)
    finally:
        alice.close()
        bob.close()


def test_two_tabs_of_one_browser_are_two_users_and_renaming_one_keeps_the_other(stack, browser):
    """Tabs share the browser's cookie; each keeps its own user (sessionStorage), so both are
    in the presence list, and a rename in one tab leaves the other as it was (a reload too)."""
    first = Visitor(browser, stack.app_url)
    second = Visitor(browser, stack.app_url, context=first.context)  # same cookies
    try:
        first.join("frank")
        second.page.reload()  # a new tab after the first chose a name: offered that name, not joined
        expect(second.page.locator("#name-input")).to_have_value("frank")
        expect(second.page.locator("#whoami")).to_be_hidden()
        second.join("grace")
        for tab in (first, second):
            expect(tab.member("frank")).to_be_visible(timeout=WAIT_MS)
            expect(tab.member("grace")).to_be_visible(timeout=WAIT_MS)
        expect(first.page.locator("#members li.me")).to_have_attribute("data-user", "frank")
        expect(second.page.locator("#members li.me")).to_have_attribute("data-user", "grace")

        second.say("sent by grace")
        received = first.page.locator(".message:not(.mine)")
        expect(received.locator(".author")).to_have_text(["grace"], timeout=WAIT_MS)
        own_status = second.page.locator(".message.mine .status")
        expect(own_status).to_have_text(re.compile("delivered"), timeout=WAIT_MS)

        second.page.click("#rename")
        second.join("henry")
        expect(first.member("henry")).to_be_visible(timeout=WAIT_MS)
        expect(first.member("grace")).to_have_count(0, timeout=WAIT_MS)
        expect(first.member("frank")).to_be_visible()
        expect(first.page.locator("#whoami")).to_have_text("frank")
        first.page.reload()  # the tab's user survives a reload, although the cookie says henry
        expect(first.page.locator("#whoami")).to_have_text("frank", timeout=WAIT_MS)
        expect(first.page.locator("#members li.me")).to_have_attribute("data-user", "frank", timeout=WAIT_MS)
        expect(second.member("frank")).to_be_visible(timeout=WAIT_MS)
    finally:
        first.close()


def test_a_name_pusher_cannot_use_is_refused_with_a_message(stack, browser):
    visitor = Visitor(browser, stack.app_url)
    try:
        visitor.page.fill("#name-input", "no spaces")
        visitor.page.evaluate("document.getElementById('name-input').removeAttribute('pattern')")
        visitor.page.click("#join")
        expect(visitor.page.locator("#join-error")).to_contain_text("letters, digits")
        expect(visitor.page.locator("#whoami")).to_be_hidden()
    finally:
        visitor.close()


def test_a_message_delivered_twice_shows_once_and_in_order(stack, browser):
    """Delivery is at least once: copies of a message (same id) show once, placed by sent_at."""
    pusher = Pusher(
        stack.app_id, stack.key, stack.secret, host="127.0.0.1", port=stack.ports["soketi"], ssl=False
    )
    visitor = Visitor(browser, stack.app_url)
    try:
        visitor.join("carol")
        expect(visitor.member("carol")).to_be_visible(timeout=WAIT_MS)

        def message(id_: str, text: str, second: int) -> dict:
            return {"id": id_, "user": "dave", "text": text, "sent_at": f"2020-01-01T00:00:{second:02d}Z"}

        late, early = message("twice-late", "late", 2), message("twice-early", "early", 1)
        for data in (late, late, early, late, early):
            pusher.trigger("presence-lobby", "message", data)
        pusher.trigger("presence-lobby", "message", message("twice-sentinel", "sentinel", 3))
        texts = visitor.page.locator(".message .text")
        expect(texts.last).to_have_text("sentinel", timeout=WAIT_MS)  # everything before it arrived
        expect(texts).to_have_text(["early", "late", "sentinel"])
    finally:
        visitor.close()


@pytest.fixture
def outage_stack():
    """A stack of its own (its tasks would show in the other tests' task view), with attempts
    enough that a retried task is still retrying when the test ends the outage."""
    with DevStack(name="devstack-browser-outage", max_attempts=100_000) as devstack:
        yield devstack


def test_a_bubble_follows_its_task_through_a_simulated_outage(outage_stack, browser):
    """The outage buttons arm make dev's fault proxy: the bubble shows retried (n), then
    delivered once Pusher is up again; with Pusher refusing, parked."""
    visitor = Visitor(browser, outage_stack.app_url)
    page = visitor.page
    try:
        visitor.join("erin")
        expect(visitor.member("erin")).to_be_visible(timeout=WAIT_MS)
        down = page.locator('#outage button[data-mode="outage"]')
        expect(down).to_be_visible(timeout=WAIT_MS)
        poll_ms = page.locator("#tasks-status")
        expect(poll_ms).to_have_attribute("data-poll-ms", "5000", timeout=60_000)  # idle: backed off

        down.click()
        expect(down).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        visitor.say("during the outage")
        status = page.locator(".message.mine .status").last
        expect(status).to_have_attribute("data-state", "retried", timeout=WAIT_MS)
        expect(status).to_have_text(re.compile(r"retried \(\d+\)"))
        expect(poll_ms).to_have_attribute("data-poll-ms", "1000")  # a bubble waits for its task
        page.click('#outage button[data-mode="off"]')
        expect(status).to_have_attribute("data-state", "delivered", timeout=60_000)
        expect(page.locator(".message .text")).to_have_text(["during the outage"])

        page.click('#outage button[data-mode="permanent"]')
        expect(page.locator('#outage button[data-mode="permanent"]')).to_have_attribute(
            "aria-pressed", "true"
        )
        visitor.say("refused for good")
        status = page.locator(".message.mine .status").last
        expect(status).to_have_attribute("data-state", "parked", timeout=WAIT_MS)
    finally:
        page.click('#outage button[data-mode="off"]')
        expect(page.locator('#outage button[data-mode="off"]')).to_have_attribute("aria-pressed", "true")
        visitor.close()


def test_a_message_whose_fields_are_not_strings_shows_without_breaking_the_page(stack, browser):
    """Anyone allowed to publish to the lobby may send any JSON: a number as the user, an
    object as sent_at. The page shows the message and keeps working."""
    pusher = Pusher(
        stack.app_id, stack.key, stack.secret, host="127.0.0.1", port=stack.ports["soketi"], ssl=False
    )
    visitor = Visitor(browser, stack.app_url)
    errors: list[str] = []
    visitor.page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        visitor.join("erin")
        expect(visitor.member("erin")).to_be_visible(timeout=WAIT_MS)
        odd = {"id": "odd-fields", "user": 42, "text": "numbered", "sent_at": {"not": "a date"}}
        pusher.trigger("presence-lobby", "message", odd)
        pusher.trigger("presence-lobby", "message", {"id": "odd-after", "user": "dave", "text": "after"})
        texts = visitor.page.locator(".message .text")
        expect(texts.last).to_have_text("after", timeout=WAIT_MS)
        expect(visitor.page.locator('.message[data-id="odd-fields"] .author')).to_have_text("42")
        assert errors == []
    finally:
        visitor.close()
