"""Parked events: the Datastore store (against the Datastore emulator) and the in-memory one
of local development, through the same tests; then the app parking, listing, replaying and
deleting through /admin/parked with Datastore, on the bundled queue and on Cloud Tasks.

Replays go to a real queue: the App Engine testbed's taskqueue (as in test_handlers.py)
or the Cloud Tasks emulator.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import webtest
from google.appengine.ext import testbed

import pushqueue
from handlers.application import create_app
from pushqueue.bundled import BundledTaskqueueBackend
from pushqueue.datastore import NdbClients
from pushqueue.parking import (
    BadCursor,
    DatastoreParking,
    MemoryParking,
    ParkedFilter,
    matching_names,
    replay_task_name,
)
from pushqueue.tasks import ParkedTaskNotFound, QueueUnavailable, TaskRequest, parked_request
from pushqueue.wire import JSON_HEADERS
from settings import ConfigError, Settings
from tests.support.app_under_attack import route_groups
from tests.support.appserver import ADMIN_HEADERS, running_stack
from tests.support.processes import ROOT, free_port, wait_until
from tests.support.soketi import unique

ADMIN = {"X-AppEngine-User-Is-Admin": "1"}


@pytest.fixture
def queue_stub():
    """The testbed's taskqueue stub with the queues of queue.yaml (the replays' queue)."""
    bed = testbed.Testbed()
    bed.activate()
    bed.init_taskqueue_stub(root_path=str(ROOT))
    yield bed.get_stub(testbed.TASKQUEUE_SERVICE_NAME)
    bed.deactivate()
    pushqueue.configure(None)


@pytest.fixture
def queue(queue_stub):
    return BundledTaskqueueBackend(queue_name="pusher", parking=MemoryParking())


def queued(stub) -> list:
    return stub.get_filtered_tasks(queue_names=["pusher"])


def park(parking_store, name: str, url: str, body: str = "{}", reason: str = "Pusher 400: bad") -> None:
    original = TaskRequest(url, body.encode(), (*JSON_HEADERS, ("X-Pusher-Socket-Id", "1.2")))
    parking_store.park(parked_request(original, reason=reason, original_task=name, retry_count=3), name)


def names(parking_store, **where: str) -> list[str]:
    return matching_names(parking_store, ParkedFilter(**where), 1000)


def test_a_parked_event_keeps_its_request_and_why(parking_store):
    name, channel = unique("t"), unique("ch-")
    url = f"/worker/push/{channel}/ev%2Fx"
    park(parking_store, name, url, '{"n": 1}', reason="Pusher 413: too big")
    park(parking_store, name, url, '{"n": 1}', reason="Pusher 413: too big")  # the ack was lost
    [task] = parking_store.page(ParkedFilter(channel=channel), 10).tasks
    assert (task.name, task.channels, task.events) == (name, (channel,), ("ev/x",))
    assert (task.reason, task.retry_count, task.original_task) == ("Pusher 413: too big", 3, name)
    assert task.body == b'{"n": 1}' and task.parked_at
    assert task.original_request().header("X-Pusher-Socket-Id") == "1.2"
    assert task.original_request().header("X-Pusher-Parked-Reason") is None


def test_listing_filters_by_channel_event_and_reason(parking_store):
    a, b, reason = unique("ch-"), unique("ch-"), unique("reason ")
    batch = json.dumps([{"channel": a, "name": "e1", "data": "1"}, {"channel": b, "name": "e2", "data": "2"}])
    park(parking_store, unique("batch"), "/worker/batch", batch, reason=reason)
    park(parking_store, unique("one"), f"/worker/push/{a}/e3", reason=reason)
    park(parking_store, unique("other"), f"/worker/push/{a}/e1")
    assert len(names(parking_store, channel=a)) == 3
    assert len(names(parking_store, channel=b)) == 1  # the batch, by its second event
    assert len(names(parking_store, channel=a, event="e1")) == 2
    assert len(names(parking_store, channel=a, reason=reason)) == 2
    assert len(names(parking_store, channel=a, event="e3", reason=reason)) == 1
    assert names(parking_store, channel=a, event="e2", reason="nope") == []


def test_listing_pages_with_a_cursor(parking_store):
    channel = unique("ch-")
    parked = sorted(unique(f"p{i}-") for i in range(5))
    for name in parked:
        park(parking_store, name, f"/worker/push/{channel}/ev")
    seen, cursor, pages = [], None, 0
    while True:
        page = parking_store.page(ParkedFilter(channel=channel), 2, cursor)
        seen += [task.name for task in page.tasks]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    # Each exactly once, 2 a page (Datastore may end with an empty page: "maybe more").
    assert sorted(seen) == parked and pages >= 3


def test_deleting_one_and_all_that_match(parking_store):
    channel = unique("ch-")
    first, *rest = [unique("d") for _ in range(3)]
    for name in (first, *rest):
        park(parking_store, name, f"/worker/push/{channel}/ev")
    parking_store.delete(first)
    with pytest.raises(ParkedTaskNotFound):
        parking_store.delete(first)
    assert sorted(names(parking_store, channel=channel)) == sorted(rest)
    for name in names(parking_store, channel=channel):
        parking_store.delete(name)
    assert names(parking_store, channel=channel) == []


def test_a_replay_queues_the_original_request_then_forgets_it(parking_store, queue, queue_stub):
    name, channel = unique("r"), unique("ch-")
    park(parking_store, name, f"/worker/push/{channel}/ev", '{"n": 2}')
    assert parking_store.replay(name, queue.add) == f"{name}-replay"
    [task] = queued(queue_stub)
    assert (task.name, task.url, task.payload) == (
        f"{name}-replay",
        f"/worker/push/{channel}/ev",
        b'{"n": 2}',
    )
    assert task.headers["X-Pusher-Socket-Id"] == "1.2" and "X-Pusher-Parked-Reason" not in task.headers
    assert names(parking_store, channel=channel) == []
    with pytest.raises(ParkedTaskNotFound):
        parking_store.replay(name, queue.add)


def test_a_replay_cut_short_after_queueing_is_neither_lost_nor_sent_twice(parking_store, queue, queue_stub):
    name, channel = unique("c"), unique("ch-")
    park(parking_store, name, f"/worker/push/{channel}/ev")

    def add_then_crash(request: TaskRequest) -> str:
        queue.add(request)
        raise SystemExit("the instance stopped here")

    with pytest.raises(SystemExit):
        parking_store.replay(name, add_then_crash)
    assert names(parking_store, channel=channel) == [name]  # still parked: nothing is lost
    parking_store.replay(name, queue.add)  # the queue knows the replay's name: no second task
    assert [task.name for task in queued(queue_stub)] == [f"{name}-replay"]
    assert names(parking_store, channel=channel) == []


def test_a_replay_the_queue_refuses_stays_parked(parking_store, queue_stub):
    name, channel = unique("q"), unique("ch-")
    park(parking_store, name, f"/worker/push/{channel}/ev")

    def queue_down(request: TaskRequest) -> str:
        raise QueueUnavailable("the queue cannot be reached")

    with pytest.raises(QueueUnavailable):
        parking_store.replay(name, queue_down)
    assert names(parking_store, channel=channel) == [name]


def test_names_too_long_to_index_are_not_indexed_but_the_event_is_parked(parking_store):
    name, wide = unique("wide"), "\U0001f600" * 450  # 450 characters, 1800 bytes
    park(parking_store, name, f"/worker/push/{quote(wide)}/ev")
    [task] = [t for t in parking_store.page(ParkedFilter(event="ev"), 1000).tasks if t.name == name]
    assert task.channels == () and task.url.endswith("/ev")


def test_a_long_name_still_gives_a_valid_replay_name():
    assert replay_task_name("x" * 500).startswith("replay-") and len(replay_task_name("x" * 500)) < 500


def test_a_cursor_the_store_did_not_give_is_refused(datastore):
    store = DatastoreParking(datastore.clients())
    for cursor in ("!!!", "AAAA"):
        with pytest.raises(BadCursor):
            store.page(ParkedFilter(), 10, cursor)


def test_the_memory_store_is_bounded():
    store = MemoryParking(capacity=2)
    park(store, "a", "/worker/push/c/e")
    park(store, "b", "/worker/push/c/e")
    park(store, "b", "/worker/push/c/e")  # the same name again still fits
    with pytest.raises(QueueUnavailable):  # the worker answers 503: the queue retries it
        park(store, "c", "/worker/push/c/e")


def test_datastore_unreachable_is_queue_unavailable():
    store = DatastoreParking(NdbClients("test-project", f"127.0.0.1:{free_port()}"))  # nothing listens
    with pytest.raises(QueueUnavailable):
        park(store, "t", "/worker/push/c/e")


# -- the app: worker parks, /admin/parked lists, replays, deletes (Datastore) ---------------


@pytest.fixture
def app(datastore, soketi, queue_stub):
    """The app as App Engine runs it (its X-AppEngine-* headers proven), parking in Datastore."""
    env = {
        "TASKS_BACKEND": "taskqueue",
        "PUSHER_URL": soketi.url,
        "GAE_ENV": "standard",
        **datastore.app_env(),
    }
    return webtest.TestApp(create_app(Settings.from_env(env), route_groups(), app_engine_apis=False))


def post_task(app, path: str, body: str, name: str) -> None:
    """Run a task the worker parks at once (a socket id pusherlib refuses)."""
    headers = {
        "X-AppEngine-QueueName": "pusher",
        "X-AppEngine-TaskName": name,
        "X-AppEngine-TaskRetryCount": "0",
        "X-Pusher-Socket-Id": "not-a-socket",
    }
    response = app.post(path, body, headers=headers, content_type="application/json")
    assert response.json["outcome"] == "parked"


def test_the_worker_parks_in_datastore_and_the_admin_replays_and_deletes(app, queue_stub):
    channel = unique("ch-")
    bad = [unique("bad") for _ in range(3)]
    for name in bad:
        post_task(app, f"/worker/push/{channel}/ev", "{}", name)
    listed = app.get(f"/admin/parked?channel={channel}&limit=2", headers=ADMIN).json
    assert len(listed["parked"]) == 2 and listed["cursor"]
    rest = app.get(f"/admin/parked?channel={channel}&cursor={listed['cursor']}", headers=ADMIN).json
    assert sorted(t["name"] for t in listed["parked"] + rest["parked"]) == sorted(f"pusher__{n}" for n in bad)
    bad = [f"pusher__{name}" for name in bad]  # parked under their queue and name
    assert app.post(f"/admin/parked/{bad[0]}/replay", headers=ADMIN).json == {"replayed": [bad[0]]}
    assert [task.name for task in queued(queue_stub)] == [f"{bad[0]}-replay"]
    assert app.delete(f"/admin/parked/{bad[1]}", headers=ADMIN).json == {"deleted": [bad[1]]}
    assert (
        app.post("/admin/parked/delete", headers=ADMIN, status=400).json["error"].startswith("deleting every")
    )
    assert app.post(f"/admin/parked/delete?channel={channel}", headers=ADMIN).json == {"deleted": [bad[2]]}
    assert app.get(f"/admin/parked?channel={channel}", headers=ADMIN).json == {"parked": [], "cursor": None}
    assert app.get("/admin/parked?cursor=%21%21", headers=ADMIN, status=400).json["error"]
    assert (
        "at most" in app.get(f"/admin/parked?channel={'x' * 2000}", headers=ADMIN, status=400).json["error"]
    )
    assert app.delete("/admin/parked/nope", headers=ADMIN, status=404).json["error"]


def test_an_encrypted_channels_parked_event_is_listed_without_its_data(app):
    channel = unique("private-encrypted-")
    name = unique("enc")
    post_task(app, f"/worker/push/{channel}/ev", json.dumps({"secret": "plaintext"}), name)
    [task] = app.get(f"/admin/parked?channel={channel}", headers=ADMIN).json["parked"]
    assert task["body"] is None and task["body_withheld"] is True
    assert "plaintext" not in json.dumps(task)
    plain = unique("private-")
    post_task(app, f"/worker/push/{plain}/ev", json.dumps({"open": "text"}), unique("plain"))
    [shown] = app.get(f"/admin/parked?channel={plain}", headers=ADMIN).json["parked"]
    assert "text" in shown["body"] and shown["body_withheld"] is False


@pytest.mark.emulator
def test_cloud_tasks_parks_in_datastore_and_replays_onto_the_push_queue(datastore, soketi):
    env = {"PUSHER_URL": soketi.url, **datastore.app_env()}
    with running_stack(env) as stack:
        app, channel = stack.app, unique("ch-")
        name = "pusher__" + app.client.post(f"/push/{channel}/empty", json="").json()["task"]  # a 400

        def parked() -> list[str]:
            reply = app.client.get(f"/admin/parked?channel={channel}", headers=ADMIN_HEADERS)
            return [task["name"] for task in reply.json()["parked"]]

        wait_until(lambda: parked() == [name], 30, "the parked event")
        replayed = app.client.post(f"/admin/parked/{name}/replay", headers=ADMIN_HEADERS)
        assert replayed.json() == {"replayed": [name]}
        # Still refused by Pusher: the replay is parked again under its own name.
        wait_until(lambda: parked() == [f"pusher__{name}-replay"], 30, "the replay parked again")


# -- which store: Datastore unless local development without the emulator -------------------

BASE = {"TASKS_BACKEND": "taskqueue", "PUSHER_URL": "http://k:s@127.0.0.1:1/apps/1"}


@pytest.mark.parametrize(
    ("env", "parking_store"),
    [
        ({}, "datastore"),
        ({"DATASTORE_EMULATOR_HOST": "127.0.0.1:8081"}, "datastore"),
        ({"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1", "DATASTORE_EMULATOR_HOST": "127.0.0.1:8081"}, "datastore"),
        ({"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1"}, "memory"),
    ],
)
def test_parked_events_stay_in_memory_only_in_local_development_without_the_emulator(env, parking_store):
    assert Settings.from_env({**BASE, **env}).parked_store == parking_store


def test_an_app_that_cannot_reach_datastore_stops_at_start_up(monkeypatch, tmp_path):
    monkeypatch.delenv("DATASTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))  # no credentials
    with pytest.raises(ConfigError, match="DATASTORE_EMULATOR_HOST"):
        create_app(Settings.from_env(BASE), [], app_engine_apis=False)
