"""The Django app with real Django; soketi judges its tokens."""

from __future__ import annotations

import json
import time

import django
import pytest
from django.conf import settings

from pusherlib.integrations.django import hooks, views
from pusherlib.signing import webhook_signature
from tests.support.django_site import SETTINGS
from tests.support.soketi import unique

if not settings.configured:
    settings.configure(**SETTINGS)
    django.setup()

from django.test import Client

SUCCEEDED = "pusher_internal:subscription_succeeded"


@pytest.fixture
def seen(soketi):
    settings.PUSHER_URL = soketi.url
    views.client.cache_clear()
    hooks.__init__()  # a clean slate of decisions for each test
    seen: dict[str, list] = {"presence": [], "added": []}

    @hooks.authorizer
    def may_join(request, channel_name, socket_id):
        return "forbidden" not in channel_name and "user" in request.COOKIES

    @hooks.channel_data
    def member(request, channel_name, socket_id):
        return {"user_id": request.COOKIES["user"], "user_info": {"name": request.COOKIES["user"].title()}}

    @hooks.user_data
    def signed_in(request, socket_id):
        return {"id": request.COOKIES["user"]}

    @hooks.webhooks.presence
    def presence(webhook, request):
        seen["presence"].append(webhook)

    @hooks.on("member_added")
    def added(event, request):
        seen["added"].append(event["user_id"])

    yield seen
    hooks.__init__()
    views.client.cache_clear()


@pytest.fixture
def http(seen):
    client = Client()
    client.cookies["user"] = "alice"
    return client


def test_soketi_accepts_private_presence_and_encrypted_answers(http, subscriber):
    settings.PUSHER_ENCRYPTION_MASTER_KEY_BASE64 = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
    views.client.cache_clear()
    try:
        for channel in (unique("private-dj-"), unique("presence-dj-"), unique("private-encrypted-dj-")):
            answer = http.post("/pusher/auth", {"socket_id": subscriber.socket_id, "channel_name": channel})
            assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
            reply = subscriber.subscribe(channel, answer.json())
            assert reply["event"] == SUCCEEDED, reply
    finally:
        del settings.PUSHER_ENCRYPTION_MASTER_KEY_BASE64


def test_batch_auth_and_user_auth(http, subscriber):
    channels = [unique("private-a-"), unique("presence-b-"), "private-forbidden-c"]
    fields = {"socket_id": subscriber.socket_id, **{f"channel_name[{i}]": c for i, c in enumerate(channels)}}
    answers = http.post("/pusher/auth", fields).json()
    assert answers["private-forbidden-c"] == {"status": 403}
    for channel in channels[:2]:
        assert subscriber.subscribe(channel, answers[channel]["data"])["event"] == SUCCEEDED
    answer = http.post("/pusher/user-auth", {"socket_id": subscriber.socket_id}).json()
    assert subscriber.signin(answer)["event"] == "pusher:signin_success"


def test_deny_by_default(seen, subscriber):
    hooks.__init__()
    fields = {"socket_id": subscriber.socket_id, "channel_name": "private-x"}
    assert Client().post("/pusher/auth", fields).status_code == 403
    assert Client().post("/pusher/user-auth", {"socket_id": subscriber.socket_id}).status_code == 403


def test_auth_keeps_csrf_protection_and_webhooks_are_exempt(seen, soketi, subscriber):
    strict = Client(enforce_csrf_checks=True)
    strict.cookies["user"] = "alice"
    fields = {"socket_id": subscriber.socket_id, "channel_name": "private-x"}
    assert strict.post("/pusher/auth", fields).status_code == 403
    body, headers = signed(soketi, [{"name": "member_added", "channel": "presence-r", "user_id": "bob"}])
    assert (
        strict.post(
            "/pusher/events/presence", body, content_type="application/json", headers=headers
        ).status_code
        == 200
    )
    assert seen["added"] == ["bob"] and len(seen["presence"]) == 1


def signed(soketi, events: list[dict]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"time_ms": int(time.time() * 1000), "events": events}).encode()
    return body, {
        "X-Pusher-Key": soketi.key,
        "X-Pusher-Signature": webhook_signature(soketi.secret.encode(), body),
    }


def test_webhooks_refuse_forgeries_replays_and_huge_bodies(http, seen, soketi):
    body, headers = signed(soketi, [{"name": "member_added", "channel": "presence-r", "user_id": "carol"}])
    post = lambda path, data, h: http.post(path, data, content_type="application/json", headers=h)  # noqa: E731
    assert post("/pusher/webhooks", body, {**headers, "X-Pusher-Signature": "0" * 64}).status_code == 401
    assert post("/pusher/webhooks", body, headers).status_code == 200
    assert post("/pusher/webhooks", body, headers).status_code == 401  # replay
    assert post("/pusher/webhooks", b"{" + b" " * 5000 + b"}", headers).status_code == 413
    assert seen["added"] == ["carol"]


def test_a_get_is_refused(http):
    assert http.get("/pusher/auth").status_code == 405
