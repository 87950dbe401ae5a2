"""Transactional enqueue against the Datastore emulator: an event is sent only if its
transaction commits, and one left behind between commit and enqueue is queued by the
sweeper (cron.yaml). The queue is the Cloud Tasks emulator dispatching to the app under
gunicorn; Pusher is soketi, watched by a websocket subscriber."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest
import webtest
from google.appengine.api import croninfo
from google.appengine.ext import testbed
from google.cloud import ndb

import pushqueue
from handlers.application import create_app
from handlers.outbox import SWEEP_PATH
from handlers.wiring import event_queue_for
from pusherlib import PusherValueError
from pushqueue import NotInTransaction, taskqueue
from pushqueue.bundled import BundledTaskqueueBackend
from pushqueue.cloudtasks import CloudTasksBackend
from pushqueue.outbox import Outbox, Swept, entry_model
from pushqueue.parking import DatastoreParking, MemoryParking
from pushqueue.tasks import QueueRefused, TaskRequest
from settings import Settings
from tests.support.app_under_attack import route_groups
from tests.support.appserver import ADMIN_HEADERS, running_stack
from tests.support.figures import write_figures
from tests.support.processes import ROOT, free_port
from tests.support.soketi import unique

pytestmark = pytest.mark.emulator


class Order(ndb.Model):
    state = ndb.StringProperty()


@pytest.fixture(scope="module")
def stack(datastore, soketi):
    with running_stack({"PUSHER_URL": soketi.url, **datastore.app_env()}) as running:
        yield running


@pytest.fixture
def queue(stack, datastore, soketi):
    """The process's default event queue on the stack's Cloud Tasks emulator, with an outbox."""
    settings = Settings.from_env(
        {"PUSHER_URL": soketi.url, **stack.emulator.app_env(), **datastore.app_env()}
    )
    events = event_queue_for(settings)
    pushqueue.configure(events)
    yield events
    pushqueue.configure(None)


def dead_queue_outbox(datastore) -> Outbox:
    """An outbox whose queue cannot be reached: the commit succeeds, the enqueue fails."""
    backend = CloudTasksBackend(
        datastore.project,
        "us-central1",
        queue_name="pusher",
        parking=MemoryParking(),
        emulator_host=f"127.0.0.1:{free_port()}",
        timeout=2,
    )
    return Outbox(pushqueue.default_queue().outbox.clients, backend.add, backend.park)


def events_before_sentinel(subscriber, channel: str) -> list[str]:
    """The event names received on ``channel`` before a sentinel sent now (untransacted)."""
    pushqueue.enqueue_event(channel, "sentinel", {})
    subscriber.event("sentinel", channel, timeout=30)
    received = [m for m in subscriber.events if m.get("channel") == channel]
    return [m["event"] for m in received if not m["event"].startswith("pusher")]


def outbox_entries(channel: str) -> list:
    """The outbox entries holding a task for ``channel``."""
    model = entry_model()
    return [entry for entry in model.query().fetch() if channel in str(entry.tasks)]


def test_an_event_is_sent_when_its_transaction_commits(queue, ndb_context, subscriber):
    channel = unique("orders-")
    subscriber.subscribe(channel)

    @ndb.transactional()
    def place_order() -> str:
        Order(id=channel, state="placed").put()
        return pushqueue.enqueue_event(channel, "placed", {"id": channel}, transactional=True)

    place_order()
    assert json.loads(subscriber.event("placed", channel, timeout=30)["data"]) == {"id": channel}
    assert outbox_entries(channel) == []  # deleted once queued


def test_a_rolled_back_transaction_sends_nothing(queue, ndb_context, subscriber):
    channel = unique("orders-")
    subscriber.subscribe(channel)

    @ndb.transactional()
    def place_then_fail() -> None:
        Order(id=channel, state="placed").put()
        pushqueue.enqueue_event(channel, "placed", {"id": channel}, transactional=True)
        taskqueue.add(url=f"/worker/push/{channel}/added", params={"n": "1"}, transactional=True)
        raise RuntimeError("payment refused")

    with pytest.raises(RuntimeError):
        place_then_fail()
    assert events_before_sentinel(subscriber, channel) == []
    assert ndb.Key(Order, channel).get() is None


def test_taskqueue_add_transactional_goes_the_same_way(queue, ndb_context, subscriber):
    channel = unique("added-")
    subscriber.subscribe(channel)

    @ndb.transactional()
    def add_task() -> str:
        return taskqueue.add(
            url=f"/worker/push/{channel}/added", params={"msg": "hi"}, transactional=True
        ).name

    name = add_task()
    assert json.loads(subscriber.event("added", channel, timeout=30)["data"]) == {"msg": "hi"}
    assert name


def test_transactional_outside_a_transaction_is_a_clear_error(queue, ndb_context):
    with pytest.raises(NotInTransaction, match=r"@ndb\.transactional"):
        pushqueue.enqueue_event("ch", "ev", {}, transactional=True)
    with pytest.raises(NotInTransaction):
        taskqueue.add(url="/worker/push/ch/ev", transactional=True)


def test_a_bad_event_is_refused_in_the_transaction_before_anything_is_written(queue, ndb_context):
    channel = unique("bad-")

    @ndb.transactional()
    def place() -> None:
        Order(id=channel, state="placed").put()
        pushqueue.enqueue_event(channel, "ev", {}, socket_id="not-a-socket", transactional=True)

    with pytest.raises(PusherValueError):
        place()
    assert ndb.Key(Order, channel).get() is None


def test_without_datastore_transactional_enqueue_is_refused():
    env = {"TASKS_BACKEND": "taskqueue", "PUSHER_URL": "http://k:s@127.0.0.1:1/apps/1"}
    events = event_queue_for(Settings.from_env({**env, "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1"}))
    with pytest.raises(NotInTransaction, match="needs Datastore"):
        events.enqueue_event("ch", "ev", {}, transactional=True)


def test_an_event_left_between_commit_and_enqueue_is_queued_by_the_sweeper(
    queue, datastore, ndb_context, subscriber
):
    channel = unique("crash-")
    subscriber.subscribe(channel)
    queue.outbox, working = dead_queue_outbox(datastore), queue.outbox

    @ndb.transactional()
    def place_order() -> None:
        Order(id=channel, state="placed").put()
        pushqueue.enqueue_event(channel, "placed", {"id": channel}, transactional=True)

    place_order()  # committed; the queue could not be reached: the entry stays
    queue.outbox = working
    assert ndb.Key(Order, channel).get().state == "placed"
    [entry] = outbox_entries(channel)
    assert events_before_sentinel(subscriber, channel) == []
    # Young entries are left to their own commit; an old one is the sweeper's.
    assert working.sweep() == Swept()
    entry.written_at = time.time() - 120
    entry.put()
    assert working.sweep() == Swept(queued=1)
    assert subscriber.event("placed", channel, timeout=30)
    assert outbox_entries(channel) == []  # deleted once queued


# -- the sweeper's endpoint and cron.yaml ------------------------------------------------------


def test_cron_yaml_runs_the_sweeper_on_an_app_route():
    with open(ROOT / "cron.yaml") as f:
        [job] = croninfo.LoadSingleCron(f).cron
    assert job.url == "/cron/outbox-sweep" and job.schedule == "every 1 minutes"


def sweeper_app(datastore, **env: str) -> webtest.TestApp:
    base = {
        "TASKS_BACKEND": "taskqueue",
        "PUSHER_URL": "http://k:s@127.0.0.1:1/apps/1",
        **datastore.app_env(),
    }
    return webtest.TestApp(
        create_app(Settings.from_env({**base, **env}), route_groups(), app_engine_apis=False)
    )


@pytest.mark.parametrize(
    ("env", "headers", "status"),
    [
        ({}, {"X-Appengine-Cron": "true"}, 403),  # forged: nothing strips it off App Engine
        ({"K_SERVICE": "worker"}, {"X-Appengine-Cron": "true"}, 403),
        ({"GAE_ENV": "standard"}, {}, 403),
        ({"GAE_ENV": "standard"}, {"X-Appengine-Cron": "true"}, 200),
        ({"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1"}, {}, 200),
    ],
)
def test_only_cron_may_sweep(datastore, env, headers, status):
    app = sweeper_app(datastore, **env)
    response = app.get("/cron/outbox-sweep", headers=headers, status=status)
    refused = {"error": "only App Engine's cron may call this"}
    assert response.json == ({"queued": 0, "parked": 0, "left": 0} if status == 200 else refused)


# -- an entry the queue refuses holds nothing back -------------------------------------------


def committed(channel: str, count: int) -> None:
    """``count`` events on ``channel`` (``ev-0``...), each from its own committed transaction."""
    for index in range(count):
        ndb.transactional()(pushqueue.enqueue_event)(channel, f"ev-{index}", {"n": index}, transactional=True)


def test_an_entry_for_a_queue_that_is_gone_is_parked_and_the_ten_behind_it_are_delivered(
    stack, queue, datastore, ndb_context, subscriber
):
    app, channel = stack.app, unique("swept-")
    subscriber.subscribe(channel)
    app.client.get(SWEEP_PATH).raise_for_status()  # nothing older than this test is left
    queue.outbox, working = dead_queue_outbox(datastore), queue.outbox  # the queue is down

    @ndb.transactional()
    def add_to_a_queue_later_dropped() -> str:
        url = f"/worker/push/{channel}/lost"
        return taskqueue.add(url=url, params={"n": "x"}, queue_name="no-such-queue", transactional=True).name

    bad = add_to_a_queue_later_dropped()
    committed(channel, 10)
    entries = sorted(outbox_entries(channel), key=lambda e: e.written_at)
    assert len(entries) == 11 and bad in str(entries[0].tasks)
    for age, entry in enumerate(entries):  # the refused one oldest: the first the sweeper takes
        entry.written_at = time.time() - 300 + age
    ndb.put_multi(entries)
    # During the outage: every entry is left for the next sweep, one attempt per queue.
    attempts: list[str | None] = []
    add = queue.outbox.add
    queue.outbox.add = lambda request: attempts.append(request.queue_name) or add(request)
    during = queue.outbox.sweep()
    queue.outbox = working
    # The queue is back; the refused entry's queue is still gone.
    after = app.client.get(SWEEP_PATH).json()
    delivered = [subscriber.event(f"ev-{index}", channel, timeout=30) for index in range(10)]
    [parked] = app.client.get(f"/admin/parked?channel={channel}", headers=ADMIN_HEADERS).json()["parked"]
    write_figures(
        "outbox_refused_entry",
        {
            "entries": 11,
            "during_outage": asdict(during),
            "attempts_during_outage": len(attempts),
            "after": after,
            "delivered": len(delivered),
        },
    )
    assert during == Swept(left=11) and attempts == ["no-such-queue", "pusher"]
    assert after == {"queued": 10, "parked": 1, "left": 0}
    assert outbox_entries(channel) == []
    assert parked["name"] == bad and parked["url"] == f"/worker/push/{channel}/lost"
    assert "no-such-queue" in parked["reason"] and "does not exist" in parked["reason"]


def test_a_queue_the_bundled_api_does_not_know_is_refused_for_good():
    bed = testbed.Testbed()
    bed.activate()
    try:
        bed.init_taskqueue_stub(root_path=str(ROOT))
        backend = BundledTaskqueueBackend(queue_name="pusher", parking=MemoryParking())
        with pytest.raises(QueueRefused, match="UnknownQueueError"):
            backend.add(TaskRequest("/worker/push/ch/ev", b"{}", queue_name="no-such-queue"))
    finally:
        bed.deactivate()


def test_a_parking_store_that_fails_stops_the_sweep_and_the_next_one_parks(
    stack, queue, datastore, ndb_context
):
    channel = unique("stopped-")
    stack.app.client.get(SWEEP_PATH).raise_for_status()  # nothing older than this test is left
    queue.outbox, working = dead_queue_outbox(datastore), queue.outbox

    @ndb.transactional()
    def add_to_a_queue_later_dropped(index: int) -> None:
        url = f"/worker/push/{channel}/lost-{index}"
        taskqueue.add(url=url, params={"n": "x"}, queue_name="no-such-queue", transactional=True)

    for index in range(3):
        add_to_a_queue_later_dropped(index)
    entries = outbox_entries(channel)
    for entry in entries:
        entry.written_at = time.time() - 300
    ndb.put_multi(entries)
    busy = DatastoreParking(working.clients, max_parks=0)  # every parking slot taken
    parks: list[str] = []

    def park(task: TaskRequest, name: str) -> None:
        parks.append(name)
        busy.park(task, name)

    failing = Outbox(working.clients, working.add, park)
    assert failing.sweep() == Swept(left=3) and len(parks) == 1  # the others would fail the same way
    assert working.sweep() == Swept(parked=3)
    listed = stack.app.client.get(f"/admin/parked?channel={channel}", headers=ADMIN_HEADERS).json()["parked"]
    assert sorted(task["url"] for task in listed) == [f"/worker/push/{channel}/lost-{i}" for i in range(3)]


def test_a_task_the_queue_refuses_at_commit_is_parked_at_once(stack, queue, ndb_context):
    channel = unique("refused-")

    @ndb.transactional()
    def add_to_a_queue_that_is_gone() -> str:
        url = f"/worker/push/{channel}/lost"
        return taskqueue.add(url=url, params={"n": "x"}, queue_name="no-such-queue", transactional=True).name

    name = add_to_a_queue_that_is_gone()
    assert outbox_entries(channel) == []
    listed = stack.app.client.get(f"/admin/parked?channel={channel}", headers=ADMIN_HEADERS).json()["parked"]
    assert [task["name"] for task in listed] == [name]
