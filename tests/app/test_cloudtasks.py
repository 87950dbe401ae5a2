"""The real path: the app under gunicorn, the Cloud Tasks emulator dispatching to it,
soketi, and a websocket subscriber. Each module-level stack has its own soketi, which the
tests stop and start."""

from __future__ import annotations

import json
import time

import pytest

import pushqueue
from pushqueue import taskqueue
from pushqueue.events import EventQueue
from settings import Settings
from tests.support.appserver import ADMIN_HEADERS, running_stack
from tests.support.processes import wait_until
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def soketi():
    with Soketi(name="soketi-cloudtasks") as server:
        yield server


@pytest.fixture(scope="module")
def stack(soketi):
    # The emulator retries a failed task at once, again and again: a high budget keeps
    # events retrying (not parked) while soketi is down.
    with running_stack({"PUSHER_URL": soketi.url, "PUSHER_MAX_ATTEMPTS": "100000"}) as stack:
        yield stack


def outcomes(app, task: str) -> list[str]:
    """The task log's outcomes of ``task``, oldest first."""
    return [entry["outcome"] for entry in reversed(app.recent_tasks(500)) if entry["task"] == task]


def parked_names(app) -> list[str]:
    response = app.client.get("/admin/parked", headers=ADMIN_HEADERS)
    response.raise_for_status()
    return [task["name"] for task in response.json()["parked"]]


def wait_until_quiet(app, timeout: float = 10) -> None:
    """Wait until the task log stops changing (nothing dispatched for a moment)."""
    seen = [None]

    def unchanged() -> bool:
        newest = app.recent_tasks(1)
        if newest == seen[0]:
            return True
        seen[0] = newest
        time.sleep(0.5)
        return False

    wait_until(unchanged, timeout, "a quiet queue")


def test_json_and_form_posts_reach_a_subscriber(stack, subscriber):
    subscriber.subscribe("e2e")
    client = stack.app.client
    assert client.post("/push/e2e/json", json={"n": 1, "text": "é"}).status_code == 202
    assert client.post("/push/e2e/form", data={"msg": "Hello world!"}).status_code == 202
    assert json.loads(subscriber.event("json", "e2e")["data"]) == {"n": 1, "text": "é"}
    assert json.loads(subscriber.event("form", "e2e")["data"]) == {"msg": "Hello world!"}
    stack.emulator.wait_until_empty("pusher")


def test_taskqueue_add_through_cloud_tasks_reaches_a_subscriber(stack, soketi, subscriber):
    settings = Settings.from_env({"PUSHER_URL": soketi.url, **stack.emulator.app_env()})
    backend = stack.emulator.backend()
    pushqueue.configure(EventQueue(backend, settings.pusher_client().requests, queue_name="pusher"))
    try:
        subscriber.subscribe("channel")
        task = taskqueue.add(url="/worker/push/channel/event", params={"msg": "Hello world!"})
        assert json.loads(subscriber.event("event", "channel")["data"]) == {"msg": "Hello world!"}
        wait_until(lambda: outcomes(stack.app, task.name) == ["delivered"], 10, "the task log entry")
    finally:
        pushqueue.configure(None)


def test_the_worker_refuses_outside_requests(stack, subscriber, pusher):
    subscriber.subscribe("outside")
    response = stack.app.client.post("/worker/push/outside/ev", json={"n": 1})
    assert response.status_code == 403
    assert subscriber.events_before_sentinel(pusher, "outside") == []


def test_a_permanently_bad_event_is_parked_and_acknowledged(stack):
    app, emulator = stack.app, stack.emulator
    task = app.client.post("/push/bad/empty", json="").json()["task"]  # soketi refuses empty data: 400
    name = f"pusher__{task}"  # parked under its queue and name
    wait_until(lambda: name in parked_names(app), 10, "the parked task")
    emulator.wait_until_empty("pusher")
    assert outcomes(app, task) == ["queued", "parked"]  # acknowledged: no retry
    [record] = [
        t
        for t in app.client.get("/admin/parked", headers=ADMIN_HEADERS).json()["parked"]
        if t["name"] == name
    ]
    assert record["url"] == "/worker/push/bad/empty" and record["body"] == "" and "400" in record["reason"]
    # A replay that fails again is parked again, under the replay's name.
    assert app.client.post(f"/admin/parked/{name}/replay", headers=ADMIN_HEADERS).json() == {
        "replayed": [name]
    }
    wait_until(lambda: f"pusher__{name}-replay" in parked_names(app), 10, "the replay parked again")
    assert name not in parked_names(app)


def test_the_admin_pages_are_for_admins_only(stack):
    assert stack.app.client.get("/admin/parked").status_code == 403
    assert stack.app.client.post("/admin/parked/replay").status_code == 403


def test_every_event_arrives_across_a_soketi_outage(stack, soketi):
    app, emulator = stack.app, stack.emulator
    soketi.stop()
    names = [app.client.post("/push/outage/tick", json={"i": i}).json()["task"] for i in range(10)]
    wait_until(lambda: all("retried" in outcomes(app, name) for name in names), 30, "every task retried")
    # Hold the retries while soketi comes back, so that no event is sent before the
    # subscriber is there to count it.
    emulator.pause("pusher")
    wait_until_quiet(app)
    soketi.start()
    with Subscriber(soketi.ws_url) as subscriber:
        subscriber.subscribe("outage")
        emulator.resume("pusher")
        received = {json.loads(subscriber.event("tick", "outage", timeout=20)["data"])["i"] for _ in names}
    assert received == set(range(10))
    emulator.wait_until_empty("pusher")
    assert all(outcomes(app, name)[-1] == "delivered" for name in names)
    assert not set(names) & set(parked_names(app))


def test_events_parked_past_their_budget_are_replayed_once_pusher_is_back():
    soketi = Soketi(name="soketi-late")  # its port is chosen, it is not started yet
    with running_stack({"PUSHER_URL": soketi.url, "PUSHER_MAX_ATTEMPTS": "2"}, name="app-budget") as stack:
        app = stack.app
        names = [app.client.post("/push/late/ev", json={"i": i}).json()["task"] for i in range(2)]
        parked_as = sorted(f"pusher__{name}" for name in names)
        wait_until(lambda: sorted(parked_names(app)) == parked_as, 15, "both tasks parked")
        assert all(outcomes(app, name) == ["queued", "retried", "parked"] for name in names)
        soketi.start()
        try:
            with Subscriber(soketi.ws_url) as subscriber:
                subscriber.subscribe("late")
                response = app.client.post("/admin/parked/replay", headers=ADMIN_HEADERS)
                assert sorted(response.json()["replayed"]) == parked_as
                received = {json.loads(subscriber.event("ev", "late")["data"])["i"] for _ in names}
            assert received == {0, 1}
            assert parked_names(app) == []
            assert app.client.post("/admin/parked/nope/replay", headers=ADMIN_HEADERS).status_code == 404
        finally:
            soketi.stop()
