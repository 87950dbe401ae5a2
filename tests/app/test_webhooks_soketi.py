"""soketi sends real, signed webhooks to the app on a real HTTP server; the handlers see them."""

from __future__ import annotations

import threading

import httpx
import pytest
import webapp2

from handlers.pusher_auth.extension import PusherEndpoints
from pusherlib import Pusher
from tests.support.processes import free_port, wait_until
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber
from tests.support.wsgi_thread import WSGIThread

EXISTENCE = ["channel_occupied", "channel_vacated"]
PRESENCE = ["member_added", "member_removed"]
APP_ID, KEY, SECRET = "4343", "hooks-key", "hooks-secret"


class Received:
    """What the registered handlers saw, shared with the server's threads."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.presence_webhooks: list[dict] = []
        self.lock = threading.Lock()

    def event(self, event, request):
        with self.lock:
            self.events.append(event)

    def presence_webhook(self, webhook, request):
        with self.lock:
            self.presence_webhooks.append(webhook)

    def has_event(self, name: str, **fields) -> bool:
        with self.lock:
            return any(
                e["name"] == name and all(e.get(k) == v for k, v in fields.items()) for e in self.events
            )


@pytest.fixture(scope="module")
def stack():
    """The app (auth + webhooks) on a real HTTP server, and a soketi posting webhooks to it."""
    received = Received()
    soketi_port = free_port()
    client = Pusher.from_url(f"http://{KEY}:{SECRET}@127.0.0.1:{soketi_port}/apps/{APP_ID}")
    endpoints = PusherEndpoints(client)
    endpoints.authorizer(lambda request, channel_name, socket_id: True)
    endpoints.channel_data(lambda request, channel_name, socket_id: {"user_id": request.cookies["user"]})
    for name in EXISTENCE + PRESENCE:
        endpoints.on(name)(received.event)
    endpoints.webhooks.presence(received.presence_webhook)
    with WSGIThread(webapp2.WSGIApplication(endpoints.routes())) as server:
        soketi = Soketi(
            APP_ID,
            KEY,
            SECRET,
            port=soketi_port,
            name="soketi-webhooks",
            webhooks=[
                {"url": f"{server.url}/pusher/webhooks", "event_types": EXISTENCE + PRESENCE},
                {"url": f"{server.url}/pusher/events/presence", "event_types": PRESENCE},
            ],
        )
        with soketi:
            yield soketi, server, received


def subscribe(server: WSGIThread, subscriber: Subscriber, channel: str, user: str) -> None:
    """Get the auth answer from the app over HTTP, as a browser would, and subscribe."""
    answer = httpx.post(
        f"{server.url}/pusher/auth",
        data={"socket_id": subscriber.socket_id, "channel_name": channel},
        cookies={"user": user},
    )
    answer.raise_for_status()
    reply = subscriber.subscribe(channel, answer.json())
    assert reply["event"] == "pusher_internal:subscription_succeeded", reply


def test_soketi_webhooks_reach_the_handlers(stack):
    soketi, server, received = stack
    with Subscriber(soketi.ws_url) as alice:
        subscribe(server, alice, "presence-hooks", "alice")
        wait_until(lambda: received.has_event("channel_occupied", channel="presence-hooks"), 10, "occupied")
        wait_until(
            lambda: received.has_event("member_added", channel="presence-hooks", user_id="alice"), 10, "added"
        )
    wait_until(lambda: received.has_event("channel_vacated", channel="presence-hooks"), 15, "vacated")
    wait_until(
        lambda: received.has_event("member_removed", channel="presence-hooks", user_id="alice"), 15, "removed"
    )


def test_the_presence_group_route_gets_whole_webhooks(stack):
    soketi, server, received = stack
    with Subscriber(soketi.ws_url) as bob:
        subscribe(server, bob, "presence-group", "bob")

        def added_in_group() -> bool:
            with received.lock:
                return any(
                    event == {"name": "member_added", "channel": "presence-group", "user_id": "bob"}
                    for webhook in received.presence_webhooks
                    for event in webhook["events"]
                )

        wait_until(added_in_group, 10, "member_added on /pusher/events/presence")
    with received.lock:
        assert all(isinstance(webhook["time_ms"], int) for webhook in received.presence_webhooks)
