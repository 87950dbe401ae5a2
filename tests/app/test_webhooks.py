"""POST /pusher/webhooks and Flask-Pusher's /pusher/events/<group>, through WebTest:
forged, mis-keyed, stale, altered and replayed webhooks are refused (401), bodies that
are not JSON objects with events get 400, genuine ones reach the registered handlers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import webapp2

from pusherlib.endpoints import (
    WEBHOOK_EVENTS,
    PusherHooks,
    ReplayGuard,
    ReplayStoreUnavailable,
    receive_webhook,
)
from tests.support.endpoints import KEY, SECRET, offline_endpoints, webtest_app


@pytest.fixture
def endpoints():
    return offline_endpoints()


@pytest.fixture
def app(endpoints):
    return webtest_app(endpoints)


@pytest.fixture
def received(endpoints):
    """Every (event name, event) the per-event handlers saw."""
    seen = []
    for name in WEBHOOK_EVENTS:
        endpoints.on(name)(lambda event, request, name=name: seen.append((name, event)))
    return seen


def webhook_body(*events, time_ms=None):
    stamp = int(time.time() * 1000) if time_ms is None else time_ms
    return json.dumps({"time_ms": stamp, "events": list(events)}).encode()


def sign(body, secret=SECRET):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(app, body, path="/pusher/webhooks", status=200, key=KEY, signature=None):
    headers = {"Content-Type": "application/json", "X-Pusher-Key": key}
    headers["X-Pusher-Signature"] = sign(body) if signature is None else signature
    return app.post(path, body, headers=headers, status=status).json


OCCUPIED = {"name": "channel_occupied", "channel": "private-a"}
MEMBER_ADDED = {"name": "member_added", "channel": "presence-a", "user_id": "alice"}


# -- genuine webhooks reach the handlers -------------------------------------------------


def test_every_kind_of_event_reaches_its_handlers(app, received):
    events = [
        OCCUPIED,
        {"name": "channel_vacated", "channel": "private-a"},
        MEMBER_ADDED,
        {"name": "member_removed", "channel": "presence-a", "user_id": "alice"},
        {"name": "client_event", "channel": "private-a", "event": "client-typing", "data": "{}"},
        {"name": "cache_miss", "channel": "cache-a"},
        {"name": "subscription_count", "channel": "a", "subscription_count": 3},
    ]
    assert post(app, webhook_body(*events)) == {"ok": True, "events": 7}
    assert received == [(event["name"], event) for event in events]


def test_several_handlers_of_one_event_are_all_called(app, endpoints, received):
    extra = []
    endpoints.on("channel_occupied")(lambda event, request: extra.append(request.path))
    post(app, webhook_body(OCCUPIED))
    assert received == [("channel_occupied", OCCUPIED)] and extra == ["/pusher/webhooks"]


def test_events_without_handlers_are_accepted(app):
    assert post(app, webhook_body({"name": "something_new", "channel": "a"})) == {"ok": True, "events": 1}


@pytest.mark.parametrize(
    ("group", "event"),
    [("channel_existence", OCCUPIED), ("presence", MEMBER_ADDED), ("client", {"name": "client_event"})],
)
def test_flask_pusher_group_routes_call_their_group_handlers(app, endpoints, received, group, event):
    seen = {name: [] for name in ("channel_existence", "presence", "client")}
    endpoints.webhooks.channel_existence(lambda webhook, request: seen["channel_existence"].append(webhook))
    endpoints.webhooks.presence(lambda webhook, request: seen["presence"].append(webhook))
    endpoints.webhooks.client(lambda webhook, request: seen["client"].append(webhook))
    body = webhook_body(event)
    post(app, body, path=f"/pusher/events/{group}")
    assert seen.pop(group) == [json.loads(body)]
    assert seen == {name: [] for name in seen}  # the other groups saw nothing
    assert received == [(event["name"], event)]


def test_unknown_group_route_is_404(app):
    body = webhook_body(OCCUPIED)
    app.post("/pusher/events/everything", body, headers={"X-Pusher-Signature": sign(body)}, status=404)


def test_registering_an_unknown_event_name_fails_at_once(endpoints):
    with pytest.raises(ValueError, match="unknown webhook event 'channel_ocupied'"):
        endpoints.on("channel_ocupied")


# -- forged, mis-keyed, stale, altered, replayed: 401 -------------------------------------


def test_forged_signature_is_401(app, received):
    body = webhook_body(OCCUPIED)
    error = post(app, body, status=401, signature=sign(body, secret="guessed"))["error"]
    assert "Signature" in error and received == []


def test_wrong_key_is_401(app, received):
    error = post(app, webhook_body(OCCUPIED), status=401, key="other-key")["error"]
    assert "X-Pusher-Key" in error and received == []


def test_missing_headers_are_401(app, received):
    body = webhook_body(OCCUPIED)
    app.post("/pusher/webhooks", body, status=401)
    app.post("/pusher/webhooks", body, headers={"X-Pusher-Key": KEY}, status=401)
    app.post("/pusher/webhooks", body, headers={"X-Pusher-Signature": sign(body)}, status=401)
    assert received == []


@pytest.mark.parametrize("offset_s", [-301, 301, -3600])
def test_time_outside_the_window_is_401(app, received, offset_s):
    body = webhook_body(OCCUPIED, time_ms=int((time.time() + offset_s) * 1000))
    assert "time_ms" in post(app, body, status=401)["error"] and received == []


def test_time_inside_the_window_is_accepted(app, received):
    post(app, webhook_body(OCCUPIED, time_ms=int((time.time() - 200) * 1000)))
    assert received == [("channel_occupied", OCCUPIED)]


def test_body_changed_after_signing_is_401(app, received):
    body = webhook_body(OCCUPIED)
    signature = sign(body)
    altered = body.replace(b"private-a", b"private-b")
    assert "Signature" in post(app, altered, status=401, signature=signature)["error"]
    post(app, body + b" ", status=401, signature=signature)
    assert received == []


def test_replayed_webhook_is_401(app, received):
    body = webhook_body(OCCUPIED)
    post(app, body)
    assert "already received" in post(app, body, status=401)["error"]
    assert received == [("channel_occupied", OCCUPIED)]


def test_a_webhook_whose_handler_failed_is_accepted_again(app, endpoints):
    calls = []

    @endpoints.on("channel_occupied")
    def flaky(event, request):
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("database down")

    body = webhook_body(OCCUPIED)
    app.post(
        "/pusher/webhooks", body, headers={"X-Pusher-Key": KEY, "X-Pusher-Signature": sign(body)}, status=500
    )
    post(app, body)  # Pusher's retry
    assert len(calls) == 2


def test_replay_guard_forgets_a_webhook_once_its_window_closed():
    guard = ReplayGuard(max_age=300)
    guard.record("closed", time.time() - 1)
    guard.record("open", time.time() + 100)
    assert not guard.seen("closed") and guard.seen("open")


def test_a_full_replay_guard_refuses_new_webhooks_rather_than_forget_open_ones():
    guard = ReplayGuard(capacity=1)
    guard.record("open", time.time() + 100)
    with pytest.raises(ReplayStoreUnavailable):
        guard.seen("new")
    assert guard.seen("open")


# -- malformed but signed: 400 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "numeric time_ms"),
        (b'{"events": []}', "numeric time_ms"),
        (b'{"time_ms": "soon", "events": []}', "numeric time_ms"),
        (b'{"time_ms": NOW}', "events"),
        (b'{"time_ms": NOW, "events": [{"channel": "a"}]}', "name"),
        (b'{"time_ms": NOW, "events": ["x"]}', "events"),
    ],
)
def test_signed_body_that_is_not_a_webhook_is_400(app, received, body, message):
    body = body.replace(b"NOW", str(int(time.time() * 1000)).encode())  # when it runs, not when collected
    assert message in post(app, body, status=400)["error"]
    assert received == []


def test_unsigned_garbage_is_401_not_400(app):
    post(app, b"not json", status=401, signature="0" * 64)


def test_only_post_is_allowed(app):
    app.get("/pusher/webhooks", status=405)
    app.get("/pusher/events/presence", status=405)


def test_the_receiver_works_without_webapp2(endpoints):
    """A Flask or Django view passes the two headers and the raw body."""
    client, hooks, seen = endpoints.client, PusherHooks(), []
    hooks.on("member_added")(lambda event, request: seen.append((event, request)))
    body = webhook_body(MEMBER_ADDED)
    reply = receive_webhook(
        client, hooks, ReplayGuard(), "django request", key=KEY, signature=sign(body), body=body
    )
    assert reply.status == 200 and seen == [(MEMBER_ADDED, "django request")]


def test_pusherlib_reads_a_webhook_from_a_request_object(endpoints):
    """pusherlib's ``django_webhook`` shortcut takes Django, Flask and WebOb requests alike."""
    body = webhook_body(MEMBER_ADDED)
    request = webapp2.Request.blank(
        "/hook", POST=body, headers={"X-Pusher-Key": KEY, "X-Pusher-Signature": sign(body)}
    )
    webhook = endpoints.client.django_webhook(request)
    assert webhook.valid() and webhook.events() == [MEMBER_ADDED]
    request.headers["X-Pusher-Signature"] = sign(body, secret="guessed")
    assert not endpoints.client.django_webhook(request).valid()
