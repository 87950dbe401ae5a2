"""The worker app under gunicorn: tasks/s through ``/worker/push``, per-task cost, memory.

The worker is driven over HTTP as the queue drives it (``X-AppEngine-QueueName``), by wrk
with the same task replayed; every task is a real trigger to the one soketi. One gunicorn
worker process (8 threads), so its figures compare with direct triggers from one process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pushqueue import wire
from tests.support.appserver import AppServer, running_app

from . import clients
from .clients import CHANNEL, DATA, EVENT, load
from .context import Context
from .report import Row
from .rounds import alternate, median, rate
from .sequential import trigger_one

QUEUE_HEADERS = {"X-AppEngine-QueueName": "pusher", "Content-Type": "application/json"}
CONNECTIONS = 8  # the queue's dispatches in flight; gunicorn's threads
MEMORY_TASKS = 100_000
DIRECT = "direct sequential triggers (pusherlib, one process)"


def worker_pid(app: AppServer) -> int:
    """The gunicorn worker process (the only child of the master)."""
    master = app.process.pid  # type: ignore[union-attr]
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def check_delivered(app: AppServer, path: str, body: bytes) -> None:
    answer = app.client.post(path, content=body, headers=QUEUE_HEADERS)
    if answer.status_code != 200 or answer.json().get("outcome") != "delivered":
        raise RuntimeError(f"the worker did not deliver: {answer.status_code} {answer.text}")


def memory(app: AppServer, url: str, body: bytes, script: Path, start_kib: int) -> dict[str, Any]:
    """The worker's RSS as tasks pass, until ``MEMORY_TASKS`` more (``start_kib``: after warm-up)."""
    pid = worker_pid(app)
    samples = [{"tasks": 0, "rss_kib": rss_kib(pid)}]
    tasks = 0
    while tasks < MEMORY_TASKS:
        tasks += int(load(url, body, QUEUE_HEADERS, CONNECTIONS, 5, script)["requests"])
        samples.append({"tasks": tasks, "rss_kib": rss_kib(pid)})
    return {"samples": samples, "start_kib": start_kib, "end_kib": samples[-1]["rss_kib"]}


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    script = ctx.wrk.script.with_name("worker.lua")
    body = json.dumps(DATA).encode()
    event = {"channel": CHANNEL, "name": EVENT, "data": json.dumps(DATA)}
    batch = wire.batch_task([wire.encode_event(event)] * 10)
    with running_app({"PUSHER_URL": ctx.server.url}, threads=CONNECTIONS, name="bench-app") as app:
        push_path = f"{wire.WORKER_PUSH_PATH}/{CHANNEL}/{EVENT}"
        check_delivered(app, push_path, body)
        check_delivered(app, batch.url, batch.body)
        push_url, batch_url = app.url + push_path, app.url + batch.url
        direct = clients.ours(ctx.server)
        load(push_url, body, QUEUE_HEADERS, CONNECTIONS, 1, script)  # warm up
        warmed_up_kib = rss_kib(worker_pid(app))
        results = alternate(
            ctx.rounds,
            {
                "direct_sequential": lambda: rate(lambda: trigger_one(direct)),
                "worker_1_connection": lambda: load(push_url, body, QUEUE_HEADERS, 1, 1, script)["rate"],
                "worker": lambda: load(push_url, body, QUEUE_HEADERS, CONNECTIONS, 1, script)["rate"],
                "worker_batch_events": lambda: (
                    10 * load(batch_url, batch.body, QUEUE_HEADERS, CONNECTIONS, 1, script)["rate"]
                ),
            },
        )
        direct.close()
        rss = memory(app, push_url, body, script, warmed_up_kib)
    direct_rate = results["direct_sequential"]
    overhead = [
        1e6 / worker - 1e6 / alone
        for worker, alone in zip(results["worker_1_connection"], direct_rate, strict=True)
    ]
    rows = [
        Row.from_rounds(
            f"worker /worker/push tasks, {CONNECTIONS} in flight",
            "tasks/s",
            results["worker"],
            direct_rate,
            goal="≥ 70% of direct sequential",
            at_least=0.7,
            baseline=DIRECT,
        ),
        Row.from_rounds(
            "worker /worker/push tasks, one at a time",
            "tasks/s",
            results["worker_1_connection"],
            direct_rate,
            baseline=DIRECT,
        ),
        Row("per-task overhead of the worker (one at a time)", "µs", median(overhead), baseline=DIRECT),
        Row.from_rounds(
            f"worker /worker/batch (10 events a task), {CONNECTIONS} in flight",
            "events/s",
            results["worker_batch_events"],
            direct_rate,
            baseline=DIRECT,
        ),
        Row(
            f"worker RSS after {rss['samples'][-1]['tasks']:,} tasks",
            "KiB",
            rss["end_kib"],
            rss["start_kib"],
            goal="flat (≤ 1.1x)",
            met=rss["end_kib"] <= rss["start_kib"] * 1.1,
            baseline="RSS after warm-up",
        ),
    ]
    return rows, {"per_second": results, "per_task_overhead_us": median(overhead), "memory": rss}
