"""enqueue_event's options through the real path (the Cloud Tasks emulator, the app under
app.yaml's entrypoint, soketi, a websocket subscriber): any number of channels, a delay,
another queue, an idempotency key; and the fake queue a user's tests use instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import httpx
import pytest

import pushqueue
from handlers.wiring import check_queues_declared
from pusherlib import PusherValueError
from pushqueue import taskqueue
from pushqueue.events import EventQueue
from pushqueue.tasks import InvalidTaskError, QueueError
from pushqueue.testing import fake_queue
from settings import ConfigError, Settings
from tests.support.appserver import ADMIN_HEADERS, running_app
from tests.support.credentials import PUBLISHER_NAME, PUBLISHER_TOKEN
from tests.support.emulator import running_emulator
from tests.support.processes import ROOT, free_port, wait_until
from tests.support.subscriber import Subscriber

pytestmark = pytest.mark.emulator

OTHER_TOKEN = "another-publisher-token-0123456789abcdef"
TOKENS = f"{PUBLISHER_NAME}:{PUBLISHER_TOKEN},other:{OTHER_TOKEN}"
SHARDS = 4
MORE_QUEUES = """
- name: pusher-low
  rate: 10/s
  bucket_size: 10
  max_concurrent_requests: 5
""" + "".join(f"- name: shard-{n}\n  rate: 500/s\n  bucket_size: 500\n" for n in range(SHARDS))


@pytest.fixture(scope="module")
def queue_yaml(tmp_path_factory):
    path = tmp_path_factory.mktemp("queues") / "queue.yaml"
    path.write_text((ROOT / "queue.yaml").read_text() + MORE_QUEUES)
    return path


def app_env(emulator, soketi) -> dict[str, str]:
    return {**emulator.app_env(), "PUSHER_URL": soketi.url, "PUSH_TOKENS": TOKENS}


@pytest.fixture(scope="module")
def stack(soketi, queue_yaml):
    app_port = free_port()
    with (
        running_emulator(app_port, queue_yaml=queue_yaml) as emulator,
        running_app(
            {**emulator.app_env(), "PUSHER_URL": soketi.url, "PUSH_TOKENS": TOKENS}, port=app_port
        ) as app,
    ):
        settings = Settings.from_env({"PUSHER_URL": soketi.url, **emulator.app_env()})
        queue = EventQueue(emulator.backend(), settings.pusher_client().requests, queue_name="pusher")
        sharded = EventQueue(emulator.backend(), queue.builder, queue_name="shard", shards=SHARDS)
        yield SimpleNamespace(emulator=emulator, app=app, queue=queue, sharded=sharded)


def delivered(app, task: str) -> bool:
    return any(e["task"] == task and e["outcome"] == "delivered" for e in app.recent_tasks(500))


def test_an_event_for_150_channels_reaches_each_one(stack, soketi):
    channels = [f"many-{n}" for n in range(150)]
    watched = ["many-0", "many-99", "many-100", "many-149"]
    with Subscriber(soketi.ws_url, timeout=30) as subscriber:
        for channel in watched:
            subscriber.subscribe(channel)
        stack.queue.enqueue_event(channels, "fanned", {"n": 1})
        arrived = {subscriber.event("fanned", channel)["channel"] for channel in watched}
    assert arrived == set(watched)
    stack.emulator.wait_until_empty("pusher")


def test_a_countdown_delays_the_event(stack, soketi):
    with Subscriber(soketi.ws_url, timeout=30) as subscriber:
        subscriber.subscribe("later")
        started = time.monotonic()
        task = stack.queue.enqueue_event("later", "delayed", "x", countdown=3)
        [waiting] = stack.emulator.tasks("pusher")
        assert waiting.name.endswith("/" + task) and waiting.schedule_time.timestamp() > time.time() + 1
        subscriber.event("delayed", "later")
        assert time.monotonic() - started >= 2.5


def test_an_event_can_go_to_another_queue_and_an_unknown_queue_is_refused(stack, soketi):
    with Subscriber(soketi.ws_url, timeout=30) as subscriber:
        subscriber.subscribe("low")
        stack.emulator.pause("pusher-low")
        task = stack.queue.enqueue_event("low", "slow-lane", "x", queue_name="pusher-low")
        assert [t.name.rsplit("/", 1)[-1] for t in stack.emulator.tasks("pusher-low")] == [task]
        assert stack.emulator.tasks("pusher") == []
        stack.emulator.resume("pusher-low")
        subscriber.event("slow-lane", "low")
    with pytest.raises(QueueError):
        stack.queue.enqueue_event("low", "nowhere", "x", queue_name="no-such-queue")
    with pytest.raises(InvalidTaskError, match="queue name"):
        stack.queue.enqueue_event("low", "nowhere", "x", queue_name="not a queue")


def test_the_same_idempotency_key_gives_one_task_and_one_delivery(stack, soketi, pusher):
    with Subscriber(soketi.ws_url, timeout=30) as subscriber:
        subscriber.subscribe("once")
        first = stack.queue.enqueue_event("once", "paid", {"order": 7}, idempotency_key="order-7-paid")
        again = stack.queue.enqueue_event("once", "paid", {"order": 7}, idempotency_key="order-7-paid")
        other = stack.queue.enqueue_event("once", "paid", {"order": 8}, idempotency_key="order-8-paid")
        assert first == again != other
        wait_until(lambda: delivered(stack.app, first) and delivered(stack.app, other), 20, "both deliveries")
        events = subscriber.events_before_sentinel(pusher, "once")
    assert sorted(json.loads(e["data"])["order"] for e in events if e["event"] == "paid") == [7, 8]


def test_events_of_different_delays_or_queues_are_not_coalesced(stack):
    with fake_queue(stack.queue) as fake, pushqueue.coalesce.collecting(stack.queue):
        stack.queue.enqueue_event("mix", "a", 1)
        stack.queue.enqueue_event("mix", "b", 2)
        stack.queue.enqueue_event("mix", "c", 3, countdown=60)
        stack.queue.enqueue_event("mix", "d", 4, queue_name="pusher-low")
    events_by_task = [[e.event for e in fake.events if e.task == task.name] for task in fake.tasks]
    assert events_by_task == [["a", "b"], ["c"], ["d"]]
    assert [t.queue_name for t in fake.tasks] == ["pusher", "pusher", "pusher-low"]
    assert fake.tasks[1].eta is not None and fake.tasks[0].eta is None


def test_a_fake_queue_records_what_would_be_queued_and_still_checks_events():
    with fake_queue() as fake:
        pushqueue.enqueue_event(["a", "b"], "created", {"id": 1}, socket_id="1.2")
        taskqueue.add(url="/worker/push/c/form", params={"msg": "hi"})
        taskqueue.add(url="/elsewhere", payload="raw")
        with pytest.raises(PusherValueError, match="reserved"):
            pushqueue.enqueue_event("a", "pusher:reserved", {})
    fake.assert_pushed("a", "created", {"id": 1})
    fake.assert_pushed("b", "created", '{"id": 1}')  # the text Pusher receives matches too
    fake.assert_pushed("c", "form", {"msg": "hi"})
    fake.assert_not_pushed("a", "other")
    assert [e.socket_id for e in fake.pushed(event="created")] == ["1.2", "1.2"]
    with pytest.raises(AssertionError, match="/elsewhere"):
        fake.assert_nothing_pushed()
    with pytest.raises(pushqueue.NotConfigured):
        pushqueue.default_queue()  # the block's own default queue is gone with it


def test_the_fake_queue_serves_a_users_own_pytest_run_without_any_emulator():
    """The example test file a user would write, run by pytest as they would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSHER_", "TASKS_", "CLOUD_TASKS_"))}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "examples/test_seed_handlers.py"]
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr


def test_sharded_queues_spread_a_burst_by_channel_and_deliver_every_event_once(stack, soketi, pusher):
    shards = [f"shard-{n}" for n in range(SHARDS)]
    channels = [f"shard-ch-{n}" for n in range(40)]
    with Subscriber(soketi.ws_url, timeout=30) as subscriber:
        for channel in channels:
            subscriber.subscribe(channel)
        for shard in shards:
            stack.emulator.pause(shard)
        for n in range(200):
            stack.sharded.enqueue_event(channels[n % 40], "burst", {"n": n})
        per_shard = {shard: len(stack.emulator.tasks(shard)) for shard in shards}
        for shard in shards:
            stack.emulator.resume(shard)
        for shard in shards:
            stack.emulator.wait_until_empty(shard, timeout=60)
        received = [
            json.loads(event["data"])["n"]
            for channel in channels
            for event in subscriber.events_before_sentinel(pusher, channel)
            if event["event"] == "burst"
        ]
    assert sorted(received) == list(range(200))  # every event, once
    assert sum(per_shard.values()) == 200 and all(per_shard.values()), per_shard
    for channel in channels:  # one channel stays on one queue
        assert stack.sharded.queue_for(channel) == stack.sharded.queue_for(channel) in shards
    print("tasks per shard:", per_shard)


def test_a_start_up_with_shards_queue_yaml_lacks_stops_with_a_message(tmp_path):
    env = {"PUSHER_URL": "http://k:s@127.0.0.1:1/apps/1", "GOOGLE_CLOUD_PROJECT": "p"}
    settings = Settings.from_env({**env, "TASKS_QUEUE_SHARDS": "3"})
    assert settings.queue_shards == 3
    queue_yaml = tmp_path / "queue.yaml"
    queue_yaml.write_text("queue:\n- name: pusher\n  rate: 1/s\n- name: pusher-0\n  rate: 1/s\n")
    with pytest.raises(ConfigError, match="declares no queue pusher-1, pusher-2"):
        check_queues_declared(settings, queue_yaml)
    more = "".join(f"- name: pusher-{n}\n  rate: 1/s\n" for n in (1, 2))
    queue_yaml.write_text(queue_yaml.read_text() + more)
    check_queues_declared(settings, queue_yaml)
    with pytest.raises(ConfigError, match="TASKS_QUEUE_SHARDS must be at least 1"):
        Settings.from_env({**env, "TASKS_QUEUE_SHARDS": "0"})


def test_push_honours_x_socket_id_as_echos_to_others_sends_it(stack, soketi, pusher):
    with Subscriber(soketi.ws_url) as sender, Subscriber(soketi.ws_url) as other:
        sender.subscribe("to-others")
        other.subscribe("to-others")
        client = stack.app.client
        answer = client.post("/push/to-others/said", json={"n": 1}, headers={"X-Socket-ID": sender.socket_id})
        assert answer.status_code == 202
        assert json.loads(other.event("said", "to-others")["data"]) == {"n": 1}
        assert [e["event"] for e in sender.events_before_sentinel(pusher, "to-others")] == []
        both = client.post(
            f"/push/to-others/said?socket_id={other.socket_id}",
            json={},
            headers={"X-Socket-ID": sender.socket_id},
        )
        assert (both.status_code, both.json()) == (
            400,
            {"error": "socket_id and the X-Socket-ID header differ: send one"},
        )
        bad = client.post("/push/to-others/said", json={}, headers={"X-Socket-ID": "not-a-socket"})
        assert bad.status_code == 400 and "socket" in bad.json()["error"]


def test_push_with_an_idempotency_key_is_one_task_per_caller(stack, soketi, pusher):
    client = stack.app.client
    other = {"Authorization": f"Bearer {OTHER_TOKEN}"}

    def push(n: int, key: str, headers: dict[str, str] | None = None) -> str:
        answer = client.post(
            "/push/idem/paid", json={"n": n}, headers={"Idempotency-Key": key, **(headers or {})}
        )
        assert answer.status_code == 202, answer.text
        return answer.json()["task"]

    with Subscriber(soketi.ws_url, timeout=30) as subscriber:
        subscriber.subscribe("idem")
        first = push(1, "order-1")
        assert push(2, "order-1") == first  # a retry after a lost answer: the same task
        from_other = push(3, "order-1", other)  # another caller's key is its own
        assert from_other != first
        wait_until(lambda: delivered(stack.app, first) and delivered(stack.app, from_other), 20, "deliveries")
        sent = [json.loads(e["data"])["n"] for e in subscriber.events_before_sentinel(pusher, "idem")]
    assert sorted(sent) == [1, 3]
    for bad in ("", "x" * 256):
        answer = client.post("/push/idem/paid", json={}, headers={"Idempotency-Key": bad})
        assert answer.status_code == 400 and "Idempotency-Key" in answer.json()["error"]


def test_an_anonymous_publish_is_told_how_to_prove_itself(stack):
    answer = httpx.post(stack.app.url + "/push/anything/ev", json={})
    assert answer.status_code == 403
    assert "send Authorization: Bearer <token>" in answer.json()["error"]
    assert "make dev prints its local one" in answer.json()["error"]


def test_a_shards_parked_event_is_listed_and_replayed(stack):
    client = stack.app.client
    task = stack.sharded.enqueue_event("shard-bad", "empty", "")  # soketi refuses empty data: 400
    shard = stack.sharded.queue_for("shard-bad")

    def parked() -> list[str]:
        answer = client.get("/admin/parked", headers=ADMIN_HEADERS).json()
        return [record["name"] for record in answer["parked"]]

    wait_until(lambda: f"{shard}__{task}" in parked(), 20, "the shard's task parked")
    assert client.post(f"/admin/parked/{shard}__{task}/replay", headers=ADMIN_HEADERS).status_code == 200
    wait_until(
        lambda: any(n.endswith(f"{shard}__{task}-replay") for n in parked()), 20, "the replay parked again"
    )
