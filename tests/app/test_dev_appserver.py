"""The app under Google's dev_appserver.py (`make appserver`): the bundled task queue for
real, with its backoff; the urlfetch transport; `login: admin`; the 000 seed's handler;
parked events in the Datastore emulator. One stack for the module (its start is the cost);
skipped with the reason where gcloud is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.dev_appserver import APPSERVER, AppEngineStack
from tests.support.processes import ROOT, free_port, wait_until
from tests.support.soketi import Soketi, unique
from tests.support.subscriber import Subscriber

pytestmark = pytest.mark.timeout(600)  # the first run builds dev_appserver's virtualenv


@pytest.fixture(scope="module")
def pusher():
    with Soketi(port=free_port(), name="soketi-appserver") as server:
        yield server


@pytest.fixture(scope="module")
def stack(pusher):
    with AppEngineStack(pusher, wsgi_app="tests.support.seed_app:create()") as running:
        yield running


def task_lines(stack: AppEngineStack, task: str) -> list[dict]:
    """The worker's log lines about ``task`` (Cloud Logging JSON, through dev_appserver)."""
    lines = []
    for line in stack.output().splitlines():
        _, _, text = line.partition("| ")
        if text.startswith("{") and f'"task": "{task}"' in text:
            lines.append(json.loads(text))
    return lines


def outcomes(stack: AppEngineStack, task: str) -> list[tuple[str, int]]:
    return [(line["outcome"], line["retry_count"]) for line in task_lines(stack, task) if "outcome" in line]


def test_the_seeds_handler_queues_through_the_bundled_queue_to_a_subscriber(stack, pusher):
    with Subscriber(pusher.ws_url) as subscriber:
        subscriber.subscribe("channel")
        assert stack.client().post("/seed").status_code == 200
        event = subscriber.event("event", "channel", timeout=60)
    assert json.loads(event["data"]) == {"msg": "Hello world!"}  # sent with PUSHER_TRANSPORT=urlfetch


def test_the_demos_task_view_sees_the_delivery_of_each_task_it_queued(stack):
    """One instance serves the app (several would each keep a task log of their own), so the
    task log the page reads has the worker's outcome of every task, even under a burst."""
    client = stack.client()

    def push(n: int) -> str:
        return client.post("/push/presence-lobby/message", json={"user": "a", "text": n}).json()["task"]

    with ThreadPoolExecutor(16) as pool:
        tasks = set(pool.map(push, range(32)))

    def all_delivered() -> bool:
        entries = client.get("/tasks/recent", params={"limit": 500}).json()["tasks"]
        return tasks <= {entry["task"] for entry in entries if entry["outcome"] == "delivered"}

    wait_until(all_delivered, 90, "every delivery in the task view")


def test_a_task_is_retried_with_backoff_while_pusher_is_down_then_delivered(stack, pusher):
    channel = unique("down-")
    pusher.stop()
    try:
        name = stack.client().post(f"/push/{channel}/ev", json={"n": 1}).json()["task"]
        wait_until(lambda: len(outcomes(stack, name)) >= 3, 60, "three failed attempts")
    finally:
        pusher.start()
    wait_until(lambda: outcomes(stack, name)[-1][0] == "delivered", 120, "the delivery")
    attempts = outcomes(stack, name)
    # Each attempt came from the queue with its retry count; none was parked or dropped.
    assert [count for _, count in attempts] == list(range(len(attempts)))
    assert {outcome for outcome, _ in attempts[:-1]} == {"retried"}


def test_admin_pages_need_dev_appservers_admin_sign_in(stack):
    anonymous = stack.client().get("/admin/parked", headers={"X-AppEngine-User-Is-Admin": "1"})
    assert anonymous.status_code == 302 and "/_ah/login" in anonymous.headers["location"]
    user = stack.client()
    user.get("/_ah/login", params={"email": "user@example.com", "action": "Login", "continue": "/"})
    refused = user.get("/admin/parked")  # dev_appserver's own refusal, before the app
    assert refused.status_code == 401, refused.text
    assert refused.text == "Current logged in user user@example.com is not authorized to view this page."
    assert "parked" in stack.client(admin=True).get("/admin/parked").json()


def test_a_permanently_bad_event_is_parked_in_datastore(stack):
    channel = unique("bad-")
    name = "pusher__" + stack.client().post(f"/push/{channel}/empty", json="").json()["task"]  # soketi: 400
    admin = stack.client(admin=True)

    def listed() -> list[str]:
        return [t["name"] for t in admin.get("/admin/parked", params={"channel": channel}).json()["parked"]]

    wait_until(lambda: listed() == [name], 60, "the parked event")


def test_without_gcloud_it_says_what_to_install_and_exits_non_zero():
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no gcloud there
    done = subprocess.run(
        [sys.executable, str(APPSERVER)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "gcloud CLI is not on PATH" in done.stdout and "app-engine-python" in done.stdout
