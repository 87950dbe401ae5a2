"""The demo page in headless Chromium against the real local stack (`make dev` on free ports):
two users in two browser contexts see each other in the presence list and exchange messages
that travel POST /push -> Cloud Tasks emulator -> worker -> soketi -> pusher-js."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

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

    def __init__(self, browser: Browser, base_url: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 760})
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
        delivered = alice.page.locator('#tasks .badge[data-outcome="delivered"]')
        expect(delivered).to_have_count(2, timeout=WAIT_MS)

        OUTPUT.mkdir(exist_ok=True)
        alice.page.screenshot(path=str(OUTPUT / "demo-alice.png"))
        bob.page.screenshot(path=str(OUTPUT / "demo-bob.png"))

        local = (stack.app_url, f"ws://127.0.0.1:{stack.ports['soketi']}")
        for visitor in (alice, bob):
            assert any(url.endswith("/static/vendor/pusher.min.js") for url in visitor.requested)
            assert [url for url in visitor.requested if not url.startswith(local)] == []

        bob.close()
        expect(alice.member("bob")).to_have_count(0, timeout=WAIT_MS)
    finally:
        alice.close()
        bob.close()


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
