"""Every attempt of a worker task ends in an answer to the queue, a log line and a task-log
entry, on the threads and on the event loop alike:

* a task cut short on the event loop (a shutdown) is answered: retried, or parked when the
  cut lands while parking (the park is awaited to its end); SIGTERM to the entrypoint with
  tasks waiting for a slow Pusher answers every one of them before granian's kill timeout;
* one bad event of a batch is parked alone, its chunk's good events delivered once;
* a task the parking store refuses for good is written whole to the error log and
  acknowledged; one it cannot take now is retried;
* parking keys hold the queue, and tasks without a name are parked apart.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import threading
import time
from types import SimpleNamespace

import httpx
import pytest

from handlers.rsgi_bridge import RsgiBridge
from pushqueue import tasklog
from pushqueue.tasks import TASK_NAME, QueueRefused, QueueUnavailable, TaskRequest
from pushqueue.worker import IncomingTask, parking_name
from tests.app.test_rsgi_bridge import Headers, Protocol
from tests.app.test_worker_core import RsgiClient
from tests.support.app_under_attack import app_under_attack
from tests.support.appserver import ADMIN_HEADERS, AppServer
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.fault_server import FaultServer, Reply
from tests.support.processes import wait_until
from tests.support.soketi import unique
from tests.support.subscriber import Subscriber

QUEUE = "pusher"
LOG_ENTRY_LIMIT = 256 * 1024  # Cloud Logging's limit for one entry
TOO_LARGE = json.dumps({"pad": "x" * 300_000}).encode()  # refused by pusherlib: parked at once


def task_headers(name: str | None = "t1", queue: str = QUEUE) -> dict[str, str]:
    headers = {"X-AppEngine-QueueName": queue, "X-AppEngine-TaskExecutionCount": "0"}
    if name is not None:
        headers["X-AppEngine-TaskName"] = name
    return headers


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def bridge_for(target) -> RsgiBridge:
    """The app of ``target`` behind the RSGI bridge, as the entrypoint serves it."""
    app = target.app.app
    return RsgiBridge(app, threads=2, body_timeout=10, max_body_bytes=1 << 20, loop_routes=app.loop_routes)


# -- parking refused for good, or for now ---------------------------------------------------


def post_large_task(target, path: str, headers: dict[str, str]):
    """Post a ``TOO_LARGE`` task on the thread or the loop path: the answer and the log lines
    that carry its body."""
    if path == "thread":
        answer = target.app.post("/worker/push/ch/ev", TOO_LARGE, headers=headers, expect_errors=True)
    else:
        with RsgiClient(bridge_for(target)) as client:
            answer = client.post("/worker/push/ch/ev", TOO_LARGE, headers)
    return answer, [line for line in log_lines(target.logs()) if line.get("body_parts")]


@pytest.mark.parametrize("path", ["thread", "loop"])
def test_a_task_the_store_refuses_for_good_is_logged_whole_and_acknowledged(path, monkeypatch):
    with app_under_attack() as target:
        refusals = []

        def refuse(request: TaskRequest, name: str) -> None:
            refusals.append(name)
            raise QueueRefused("datastore: the entity is too large")

        monkeypatch.setattr(target.app.app.services.backend, "park", refuse)
        tasklog.clear()
        headers = {**task_headers("big-1"), "Content-Type": "application/json", "X-Pusher-Socket-Id": "1.2"}
        answer, logged = post_large_task(target, path, headers)
    assert (answer.status_int, answer.json["outcome"]) == (200, "logged")
    assert refusals == ["pusher__big-1"]
    assert [entry["outcome"] for entry in tasklog.recent()] == ["logged"]
    assert [line["body_part"] for line in logged] == [1, 2, 3, 4, 5]  # 400 KB of base64
    assert all(len(json.dumps(line).encode()) < LOG_ENTRY_LIMIT for line in logged)
    assert base64.b64decode("".join(line["body_base64"] for line in logged)) == TOO_LARGE
    first = logged[0]
    assert (first["severity"], first["task"], first["queue"], first["url"]) == (
        "ERROR",
        "big-1",
        QUEUE,
        "/worker/push/ch/ev",
    )
    assert first["headers"] == {"Content-Type": "application/json", "X-Pusher-Socket-Id": "1.2"}
    assert "too large" in first["error"] and first["parking_name"] == "pusher__big-1"


@pytest.mark.parametrize("path", ["thread", "loop"])
def test_a_task_the_store_cannot_take_now_is_retried(path, monkeypatch):
    with app_under_attack() as target:

        def unavailable(request: TaskRequest, name: str) -> None:
            raise QueueUnavailable("datastore: ServiceUnavailable")

        monkeypatch.setattr(target.app.app.services.backend, "park", unavailable)
        tasklog.clear()
        headers = {**task_headers("busy-1"), "Content-Type": "application/json"}
        answer, logged = post_large_task(target, path, headers)
    assert (answer.status_int, answer.json["outcome"]) == (500, "retried")
    assert [entry["outcome"] for entry in tasklog.recent()] == ["retried"] and logged == []


# -- parking keys -------------------------------------------------------------------------


def test_same_named_tasks_of_two_queues_and_tasks_without_a_name_are_parked_apart():
    with app_under_attack() as target:
        sent = [
            (task_headers("t1", "pusher"), b'{"from": "pusher"}'),
            (task_headers("t1", "other"), b'{"from": "other"}'),
            (task_headers(None), b'{"unnamed": 1}'),
            (task_headers(None), b'{"unnamed": 2}'),
            (task_headers(None), b'{"unnamed": 1}'),  # the first one's retry: the same task
        ]
        for headers, body in sent:
            answer = target.post("/worker/push/ch/pusher:reserved", body, "application/json", headers)
            assert answer.json["outcome"] == "parked"
        parked = target.app.get("/admin/parked", headers={"X-AppEngine-User-Is-Admin": "1"}).json["parked"]
    names = sorted(task["name"] for task in parked)
    assert sorted(task["body"] for task in parked) == sorted(body.decode() for _, body in sent[:4])
    assert names[:2] == ["other__t1", "pusher__t1"]
    assert all(name.startswith("pusher__unnamed-") for name in names[2:]) and len(names) == 4


def test_a_parking_name_is_a_valid_task_name_unique_and_stable():
    def task(name: str, queue: str = QUEUE) -> IncomingTask:
        return IncomingTask(queue, name, 0, TaskRequest("/worker/batch"))

    assert parking_name(task("t25"), 20) == "pusher__t25-20"
    long_a, long_b = "a" * 499 + "x", "a" * 499 + "y"
    names = {parking_name(task(name), start) for name in (long_a, long_b, "é/x") for start in (None, 0, 990)}
    names |= {parking_name(task("t1", queue)) for queue in ("q-a", "q-b")}
    assert len(names) == 11 and all(TASK_NAME.fullmatch(name) for name in names)
    assert parking_name(task(long_a), 10) == parking_name(task(long_a), 10)


# -- one bad event in a batch -------------------------------------------------------------


class RefusingProxy(FaultProxy):
    """soketi behind a proxy answering 413 to any call carrying ``marker``: Pusher refuses a
    whole ``/batch_events`` call for one event too large (soketi cannot refuse one event)."""

    def __init__(self, upstream_port: int, marker: bytes):
        super().__init__(upstream_port)
        self.marker, self.refused = marker, 0

    def forward(self, method, path, headers, body):
        if self.marker in body:
            self.refused += 1
            return 413, [("Content-Type", "application/json")], b'{"error": "payload too large"}'
        return super().forward(method, path, headers, body)


def test_one_bad_event_is_parked_alone_and_its_chunks_good_events_delivered_once(soketi, pusher):
    channel = unique("one-bad-")
    events = [{"channel": channel, "name": "tick", "data": json.dumps({"i": i})} for i in range(15)]
    events[7]["data"] = json.dumps({"i": 7, "mark": "refuse-me"})
    with RefusingProxy(soketi.port, b"refuse-me") as proxy, Subscriber(soketi.ws_url) as subscriber:
        subscriber.subscribe(channel)
        url = soketi.url.replace(f":{soketi.port}/", f":{proxy.port}/")
        with AppServer({"PUSHER_URL": url}, name="worker-one-bad-event") as app:
            answer = app.client.post("/worker/batch", json=events, headers=task_headers("tb15"))
            listed = app.client.get("/admin/parked", params={"channel": channel}, headers=ADMIN_HEADERS)
        received = subscriber.events_before_sentinel(pusher, channel)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "parked")
    assert sorted(json.loads(event["data"])["i"] for event in received) == [i for i in range(15) if i != 7]
    [parked] = listed.json()["parked"]
    assert parked["name"] == "pusher__tb15-7"
    assert [json.loads(event["data"])["i"] for event in json.loads(parked["body"])] == [7]
    assert proxy.refused == 2  # the first chunk, then event 7 alone
    assert proxy.counters["requests"] == 12  # 2 chunks, then the first one's 10 events one by one


# -- cancellation on the event loop -------------------------------------------------------


def scope_for(path: str, headers: dict[str, str], body: bytes) -> SimpleNamespace:
    names = {name.lower(): value for name, value in headers.items()}
    return SimpleNamespace(
        proto="http",
        method="POST",
        path=path,
        query_string="",
        server="127.0.0.1:80",
        client="127.0.0.1:1234",
        scheme="http",
        http_version="1.1",
        headers=Headers({**names, "content-type": "application/json", "content-length": str(len(body))}),
    )


def interrupted(bridge: RsgiBridge, path: str, name: str, body: bytes, started: threading.Event) -> tuple:
    """The answer to task ``name`` on the bridge's loop, cancelled once ``started`` is set."""

    async def run() -> tuple:
        protocol = Protocol(body)
        served = asyncio.ensure_future(bridge.__rsgi__(scope_for(path, task_headers(name), body), protocol))
        while not started.is_set():
            await asyncio.sleep(0.02)
        served.cancel()
        await served
        await bridge.app.services.worker.loop_pusher.transport.aclose()
        return protocol.answer

    try:
        status, _, answer = asyncio.run(run())
    finally:
        bridge.threads.shutdown()
    return status, json.loads(answer)


def first_request(server: FaultServer) -> threading.Event:
    """An event set once ``server`` has received its first request."""
    reached = threading.Event()
    threading.Thread(
        target=lambda: (wait_until(lambda: server.request_count == 1, 10, "Pusher"), reached.set())
    ).start()
    return reached


def test_a_trigger_cut_short_on_the_loop_is_answered_retried_and_logged():
    with FaultServer(default=Reply(200, b"{}", delay=5)) as slow, app_under_attack(slow.pusher_url) as target:
        tasklog.clear()
        reached = first_request(slow)
        status, answer = interrupted(bridge_for(target), "/worker/push/ch/ev", "cut-1", b"{}", reached)
        lines = [line for line in log_lines(target.logs()) if line.get("task") == "cut-1"]
    assert (status, answer["outcome"]) == (500, "retried") and "interrupted" in answer["error"]
    assert [entry["outcome"] for entry in tasklog.recent()] == ["retried"]
    assert [(line["severity"], line["outcome"]) for line in lines] == [("WARNING", "retried")]


def test_a_park_in_progress_when_the_loop_task_is_cut_short_completes_and_is_answered(monkeypatch):
    with app_under_attack() as target:
        tasklog.clear()
        backend = target.app.app.services.backend
        park, parking = backend.park, threading.Event()

        def slow_park(request: TaskRequest, name: str) -> None:
            parking.set()
            time.sleep(1)
            park(request, name)

        monkeypatch.setattr(backend, "park", slow_park)
        status, answer = interrupted(
            bridge_for(target), "/worker/push/ch/pusher:bad", "cut-2", b"{}", parking
        )
        assert target.parked() == ["pusher__cut-2"]
    assert (status, answer["outcome"]) == (200, "parked")
    assert [entry["outcome"] for entry in tasklog.recent()] == ["parked"]


def test_a_batch_sent_on_a_thread_when_the_loop_task_is_cut_short_completes_and_is_answered():
    """The core serves a batch from the event loop on a thread: cut short meanwhile, it is
    awaited to its end, answered and settled as on the threads."""
    with FaultServer(default=Reply(200, b"{}", delay=1)) as slow, app_under_attack(slow.pusher_url) as target:
        tasklog.clear()
        reached = first_request(slow)
        event = {"channel": "ch", "name": "ev", "data": "{}"}
        body = json.dumps([event, event]).encode()
        status, answer = interrupted(bridge_for(target), "/worker/batch", "cut-3", body, reached)
    assert (status, answer) == (200, {"outcome": "delivered"})
    assert [entry["outcome"] for entry in tasklog.recent()] == ["delivered"]


def test_sigterm_answers_every_task_in_flight_before_the_kill_timeout(soketi, pusher):
    """Through the entrypoint (granian, uvloop): 4 tasks wait for a Pusher answering after
    15 s, 2 for one answering after 1 s; SIGTERM. granian kills its worker 8 s later: the 2
    quick ones are delivered, the 4 slow ones cut short at 5 s, answered 500 (the queue
    retries them) and logged; nothing goes unanswered."""
    channel = unique("sigterm-")
    with FaultProxy(soketi.port) as proxy, Subscriber(soketi.ws_url) as subscriber:
        subscriber.subscribe(channel)
        url = soketi.url.replace(f":{soketi.port}/", f":{proxy.port}/")
        server = AppServer({"PUSHER_URL": url, "PUSHER_TIMEOUT": "20"}, name="worker-sigterm")
        offset = server.log_path.stat().st_size if server.log_path.exists() else 0
        answers: dict[str, tuple[int, str] | str] = {}

        def send(client: httpx.Client, name: str) -> None:
            try:
                answer = client.post(
                    f"/worker/push/{channel}/ev", json={"task": name}, headers=task_headers(name)
                )
                answers[name] = (answer.status_code, answer.json()["outcome"])
            except httpx.TransportError as exc:
                answers[name] = f"no answer: {exc!r}"

        with server, httpx.Client(base_url=server.url, timeout=30) as client:
            threads = []
            for names, fault, count in (
                (["slow-0", "slow-1", "slow-2", "slow-3"], 15, 4),
                (["quick-0", "quick-1"], 1, 6),
            ):
                proxy.arm(Fault.slow(fault), len(names))
                threads += [threading.Thread(target=send, args=(client, name)) for name in names]
                for thread in threads[-len(names) :]:
                    thread.start()
                wait_until(lambda count=count: proxy.counters["requests"] >= count, 10, "the tasks at Pusher")
            server.process.send_signal(signal.SIGTERM)
            for thread in threads:
                thread.join(30)
            exit_code = server.process.wait(timeout=30)
        received = subscriber.events_before_sentinel(pusher, channel)
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        lines = log_lines(log.read().decode())
    outcomes = {line["task"]: line["outcome"] for line in lines if line.get("task") in answers}
    assert answers == {
        **{f"slow-{i}": (500, "retried") for i in range(4)},
        **{f"quick-{i}": (200, "delivered") for i in range(2)},
    }
    assert outcomes == {name: outcome for name, (_, outcome) in answers.items()}
    assert exit_code == 0
    assert {"quick-0", "quick-1"} <= {json.loads(event["data"])["task"] for event in received}
