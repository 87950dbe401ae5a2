"""Webhooks: real ones sent by soketi are accepted; altered, foreign or stale ones are not."""

from __future__ import annotations

import json
import time

import pytest
import webob

from pusherlib import Pusher, WebhookRejected
from pusherlib.signing import webhook_signature
from tests.support.fault_server import FaultServer, ReceivedRequest
from tests.support.processes import wait_until
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber


@pytest.fixture(scope="module")
def received():
    """The webhooks soketi sends when a channel is occupied and vacated."""
    with FaultServer() as receiver:
        server = Soketi(
            name="soketi-webhooks",
            webhooks=[
                {
                    "url": f"http://127.0.0.1:{receiver.port}/pusher/webhook",
                    "event_types": ["channel_occupied", "channel_vacated"],
                }
            ],
        )
        with server:
            with Subscriber(server.ws_url) as subscriber:
                subscriber.subscribe("watched")
            wait_until(lambda: receiver.request_count >= 2, 10, "two webhooks")
        yield server, receiver.requests


@pytest.fixture(scope="module")
def client(received):
    server, _ = received
    return Pusher(server.app_id, server.key, server.secret)


@pytest.fixture(scope="module")
def occupied(received) -> ReceivedRequest:
    _, requests = received
    return next(r for r in requests if b"channel_occupied" in r.body)


def headers_of(request: ReceivedRequest) -> tuple[str, str]:
    return request.headers["x-pusher-key"], request.headers["x-pusher-signature"]


def signed(client: Pusher, payload: dict) -> tuple[str, str]:
    body = json.dumps(payload)
    return body, webhook_signature(client.secret.encode(), body.encode())


def test_soketi_webhooks_are_valid(client, received):
    _, requests = received
    names = []
    for request in requests:
        key, signature = headers_of(request)
        parsed = client.validate_webhook(key, signature, request.body)
        assert parsed is not None, request
        names.extend(event["name"] for event in parsed["events"])
    assert sorted(names) == ["channel_occupied", "channel_vacated"]


def test_webhook_object_shape(client, occupied):
    key, signature = headers_of(occupied)
    webhook = client.webhook(occupied.body, key, signature)
    assert webhook.valid()
    assert webhook.events() == [{"name": "channel_occupied", "channel": "watched"}]
    assert client.webhook(occupied.body.decode(), key, signature).valid()


def test_keyword_shape_of_the_seeds(client, occupied):
    key, signature = headers_of(occupied)
    parsed = client.validate_webhook(key=key, signature=signature, body=occupied.body.decode())
    assert parsed["events"][0]["channel"] == "watched"


def test_django_request(client, occupied):
    class DjangoStyleRequest:
        """What Django's HttpRequest offers: META with HTTP_ headers, and body."""

        def __init__(self, request: ReceivedRequest):
            self.META = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in request.headers.items()}
            self.body = request.body

    assert client.django_webhook(DjangoStyleRequest(occupied)).valid()
    tampered = DjangoStyleRequest(occupied)
    tampered.body = occupied.body.replace(b"watched", b"watcher")
    assert not client.django_webhook(tampered).valid()


def test_webob_request(client, occupied):
    request = webob.Request.blank(
        "/pusher/webhook",
        method="POST",
        body=occupied.body,
        headers=dict(zip(("X-Pusher-Key", "X-Pusher-Signature"), headers_of(occupied), strict=True)),
    )
    assert client.django_webhook(request).events()[0]["name"] == "channel_occupied"


@pytest.mark.parametrize(
    "alter",
    [
        lambda body, key, sig: (body.replace(b"watched", b"watcher"), key, sig),
        lambda body, key, sig: (body, "another-key", sig),
        lambda body, key, sig: (body, key, sig[:-1] + ("0" if sig[-1] != "0" else "1")),
        lambda body, key, sig: (body, key, webhook_signature(b"another-secret", body)),
        lambda body, key, sig: (body, None, sig),
        lambda body, key, sig: (body, key, None),
        lambda body, key, sig: (body, key, ""),
    ],
    ids=["altered body", "wrong key", "wrong signature", "other secret", "no key", "no signature", "empty"],
)
def test_refused_webhooks(client, occupied, alter):
    body, key, signature = alter(occupied.body, *headers_of(occupied))
    assert client.validate_webhook(key, signature, body) is None
    webhook = client.webhook(body, key, signature)
    assert not webhook.valid()
    assert webhook.events() == []


def test_age_limit_is_five_minutes(client):
    now_ms = time.time() * 1000
    recent = signed(client, {"time_ms": now_ms - 290_000, "events": []})
    stale = signed(client, {"time_ms": now_ms - 310_000, "events": []})
    future = signed(client, {"time_ms": now_ms + 310_000, "events": []})
    assert client.validate_webhook(client.key, recent[1], recent[0]) is not None
    assert client.validate_webhook(client.key, stale[1], stale[0]) is None
    assert client.validate_webhook(client.key, future[1], future[0]) is None


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"events": []}', '{"time_ms": "soon"}'])
def test_signed_but_malformed_bodies(client, body):
    signature = webhook_signature(client.secret.encode(), body.encode())
    assert client.validate_webhook(client.key, signature, body) is None


def test_check_webhook_says_why_it_refuses(client, occupied):
    key, signature = headers_of(occupied)
    assert client.check_webhook(key, signature, occupied.body)["events"][0]["name"] == "channel_occupied"
    with pytest.raises(WebhookRejected) as refused:
        client.check_webhook("another-key", signature, occupied.body)
    assert refused.value.reason == "key"
    with pytest.raises(WebhookRejected) as refused:
        client.check_webhook(key, signature, occupied.body + b" ")
    assert refused.value.reason == "signature"
    old = signed(client, {"time_ms": time.time() * 1000 - 60_000, "events": []})
    assert client.check_webhook(client.key, old[1], old[0])["events"] == []
    with pytest.raises(WebhookRejected) as refused:
        client.check_webhook(client.key, old[1], old[0], max_age=30)
    assert refused.value.reason == "time"


@pytest.mark.parametrize(
    ("events", "says"),
    [("[" * 30_000 + "]" * 30_000, "nested more than 256 levels"), ("[NaN]", "NaN is not a JSON value")],
)
def test_signed_bodies_that_are_not_strict_json_are_refused_as_bodies(client, events, says):
    body = f'{{"time_ms": {int(time.time() * 1000)}, "events": {events}}}'.encode()
    signature = webhook_signature(client.secret.encode(), body)
    with pytest.raises(WebhookRejected, match=says) as refused:
        client.check_webhook(client.key, signature, body)
    assert refused.value.reason == "body"
