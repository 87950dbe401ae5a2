"""Webhook replays refused across every webhook route and every process: each handler runs
once per genuine webhook. The records are in Datastore (the emulator) for the app; the
in-process guard of local development is held to the same rules within one process."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from handlers.pusher_auth.replay_store import DatastoreReplayStore
from pusherlib.endpoints import ReplayGuard
from pusherlib.signing import webhook_signature
from pushqueue.datastore import NdbClients
from tests.support.appserver import running_app
from tests.support.endpoints import KEY, SECRET, offline_endpoints, webtest_app
from tests.support.processes import free_port
from tests.support.soketi import unique

GROUPS = ["channel_existence", "presence", "client"]
ROUTES = ["/pusher/webhooks", *(f"/pusher/events/{group}" for group in GROUPS)]


def genuine(secret: str = SECRET, key: str = KEY) -> tuple[bytes, dict[str, str]]:
    """A signed ``channel_occupied`` webhook for a channel of its own."""
    body = json.dumps(
        {
            "time_ms": int(time.time() * 1000),
            "events": [{"name": "channel_occupied", "channel": unique("c-")}],
        }
    ).encode()
    return body, {"X-Pusher-Key": key, "X-Pusher-Signature": webhook_signature(secret.encode(), body)}


@pytest.fixture(params=["memory", "datastore"])
def store(request):
    if request.param == "memory":
        return ReplayGuard()
    emulator = request.getfixturevalue("datastore")
    return DatastoreReplayStore(emulator.clients())


def counting_app(store):
    """The webhook routes with ``store``, counting the calls of each kind of handler."""
    endpoints = offline_endpoints()
    endpoints.replay_guard = store
    calls: Counter[str] = Counter()
    endpoints.on("channel_occupied")(lambda event, request: calls.update(["on"]))
    for group in GROUPS:
        endpoints.webhooks.handlers[group].append(lambda webhook, request, g=group: calls.update([g]))
    return webtest_app(endpoints), calls, endpoints


def post(app, route: str, body: bytes, headers: dict[str, str], status: int | str = "*"):
    return app.post(route, body, headers=headers, content_type="application/json", status=status)


def test_each_handler_runs_once_whichever_routes_the_webhook_reaches(store):
    app, calls, _ = counting_app(store)
    body, headers = genuine()
    for route in ROUTES:
        post(app, route, body, headers, status=200)
    # Before: the on() handler ran once per route, 4 times.
    assert calls == Counter({"on": 1, "channel_existence": 1, "presence": 1, "client": 1})
    for route in ROUTES:
        assert "already received" in post(app, route, body, headers, status=401).json["error"]
    assert sum(calls.values()) == 4


def test_a_webhook_whose_handler_failed_is_handled_when_pusher_sends_it_again(store):
    app, calls, endpoints = counting_app(store)
    failures = ["database down"]

    @endpoints.on("channel_occupied")
    def flaky(event, request):
        if failures:
            raise RuntimeError(failures.pop())

    body, headers = genuine()
    post(app, "/pusher/webhooks", body, headers, status=500)
    assert post(app, "/pusher/webhooks", body, headers, status=200).json["ok"]  # Pusher's retry
    post(app, "/pusher/webhooks", body, headers, status=401)
    assert calls["on"] == 2  # the first attempt, then the retry


def test_replays_cannot_be_checked_without_datastore_so_the_webhook_is_refused_for_now():
    store = DatastoreReplayStore(NdbClients("test-project", f"127.0.0.1:{free_port()}"))  # nothing listens
    app, calls, _ = counting_app(store)
    body, headers = genuine()
    assert "try again" in post(app, "/pusher/webhooks", body, headers, status=503).json["error"]
    assert calls == Counter()


def test_a_webhook_handled_by_one_process_is_refused_by_another(datastore):
    env = {"PUSHER_URL": "http://key:secret@127.0.0.1:1/apps/1", **datastore.app_env()}
    body, headers = genuine(secret="secret", key="key")
    with running_app(env, name="app-webhooks-a") as first, running_app(env, name="app-webhooks-b") as second:
        accepted = first.client.post("/pusher/webhooks", content=body, headers=headers)
        assert accepted.status_code == 200, accepted.text
        # Before: every process accepted it once more.
        replayed = second.client.post("/pusher/webhooks", content=body, headers=headers)
        assert replayed.status_code == 401 and "already received" in replayed.json()["error"]
        group = second.client.post("/pusher/events/channel_existence", content=body, headers=headers)
        assert group.status_code == 200  # that group's handlers had not run yet
        replayed = first.client.post("/pusher/events/channel_existence", content=body, headers=headers)
        assert replayed.status_code == 401
