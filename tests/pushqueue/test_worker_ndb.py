"""``PUSHER_TRANSPORT=ndb`` through the real path: the Cloud Tasks emulator dispatches to the
app under gunicorn, whose worker runs each task in a google-cloud-ndb context and triggers
through NDB futures to soketi, and a websocket subscriber receives the events."""

from __future__ import annotations

import json

import pytest

from pushqueue import wire
from tests.support.appserver import running_stack
from tests.support.processes import wait_until

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def stack(soketi):
    with running_stack({"PUSHER_URL": soketi.url, "PUSHER_TRANSPORT": "ndb"}, name="app-ndb") as stack:
        yield stack


def test_an_event_posted_to_the_app_reaches_a_subscriber(stack, subscriber):
    subscriber.subscribe("ndb-e2e")
    assert stack.app.client.post("/push/ndb-e2e/hello", json={"n": 1}).status_code == 202
    assert json.loads(subscriber.event("hello", "ndb-e2e", timeout=15)["data"]) == {"n": 1}


def test_a_batch_task_of_25_events_reaches_a_subscriber(stack, subscriber):
    subscriber.subscribe("ndb-batch")
    backend = stack.emulator.backend()
    events = [{"channel": "ndb-batch", "name": "tick", "data": json.dumps({"i": i})} for i in range(25)]
    name = backend.add(wire.batch_task([wire.encode_event(event) for event in events]))
    received = [json.loads(subscriber.event("tick", "ndb-batch", timeout=15)["data"])["i"] for _ in range(25)]
    assert sorted(received) == list(range(25))
    wait_until(
        lambda: any(e["task"] == name and e["outcome"] == "delivered" for e in stack.app.recent_tasks()),
        15,
        "the task's delivery in the task log",
    )
    assert "Eventloop is exhausted" not in stack.app.log_path.read_text()
