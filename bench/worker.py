"""The worker app under its servers: tasks/s through ``/worker/push``, per-task cost, memory.

The worker is driven over HTTP as the queue drives it (``X-AppEngine-QueueName``), by wrk
with the same task replayed, 8 tasks in flight; every task is a real trigger to the one
soketi. In one run, with alternating rounds: direct sequential triggers from one process;
the app started with ``app.yaml``'s entrypoint; the seed's worker (webapp2 and the official
library) under the same entrypoint; and the app under every candidate server.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlencode

from pushqueue import wire
from tests.support.appserver import AppServer, entrypoint, tree_rss_kib

from . import clients, servers
from .clients import CHANNEL, DATA, EVENT, load
from .context import Context
from .report import Row
from .rounds import alternate, median, rate
from .sequential import trigger_one

QUEUE_HEADERS = {"X-AppEngine-QueueName": "pusher", "Content-Type": "application/json"}
SEED_HEADERS = {"X-AppEngine-QueueName": "pusher", "Content-Type": "application/x-www-form-urlencoded"}
CONNECTIONS = 8  # the queue's dispatches in flight
MEMORY_TASKS = 100_000
DIRECT = "direct sequential triggers (pusherlib, one process)"
SEED = "seed-style worker (webapp2 + official pusher), same server"
# What the app needs to run locally: the queue's headers accepted off App Engine, and a
# publisher token (``PUSH_TOKENS`` is ``name:token``; harmless where the app does not read them).
PUBLISHER_TOKEN = "bench-publisher-token-0123456789abcdef"
APP_ENV = {"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1", "PUSH_TOKENS": f"bench:{PUBLISHER_TOKEN}"}


def check_delivered(app: AppServer, path: str, body: bytes) -> None:
    answer = app.client.post(path, content=body, headers=QUEUE_HEADERS)
    if answer.status_code != 200 or answer.json().get("outcome") != "delivered":
        raise RuntimeError(f"the worker did not deliver: {answer.status_code} {answer.text}")


def memory(app: AppServer, url: str, body: bytes, script, start_kib: int) -> dict[str, Any]:
    """The server's RSS (every process) as tasks pass, until ``MEMORY_TASKS`` more."""
    pid = app.process.pid  # type: ignore[union-attr]
    samples = [{"tasks": 0, "rss_kib": tree_rss_kib(pid)}]
    tasks = 0
    while tasks < MEMORY_TASKS:
        tasks += int(load(url, body, QUEUE_HEADERS, CONNECTIONS, 5, script)["requests"])
        samples.append({"tasks": tasks, "rss_kib": tree_rss_kib(pid)})
    return {"samples": samples, "start_kib": start_kib, "end_kib": samples[-1]["rss_kib"]}


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    script = ctx.wrk.script.with_name("worker.lua")
    body = json.dumps(DATA).encode()
    seed_body = urlencode(DATA).encode()
    event = {"channel": CHANNEL, "name": EVENT, "data": json.dumps(DATA)}
    batch = wire.batch_task([wire.encode_event(event)] * 10)
    push_path = f"{wire.WORKER_PUSH_PATH}/{CHANNEL}/{EVENT}"
    env = {"PUSHER_URL": ctx.server.url, **APP_ENV}
    entry = entrypoint()
    candidates = {label: command for label, command in servers.CANDIDATES.items()}
    with ExitStack() as stack:
        app = stack.enter_context(servers.entrypoint_server(env, "bench-app"))
        seed = stack.enter_context(servers.entrypoint_server(env, "bench-seed", servers.SEED_APP))
        others = {
            label: stack.enter_context(servers.candidate_server(env, label, f"bench-server-{index}"))
            for index, label in enumerate(candidates)
        }
        for server in (app, *others.values()):
            check_delivered(server, push_path, body)
        check_delivered(app, batch.url, batch.body)
        push_url, batch_url = app.url + push_path, app.url + batch.url
        direct = clients.ours(ctx.server)
        for server in (app, *others.values()):
            load(server.url + push_path, body, QUEUE_HEADERS, CONNECTIONS, 1, script)  # warm up
        load(seed.url + push_path, seed_body, SEED_HEADERS, CONNECTIONS, 1, script)
        warmed_up_kib = tree_rss_kib(app.process.pid)  # type: ignore[union-attr]

        def wrk(server: AppServer, connections: int = CONNECTIONS) -> float:
            return load(server.url + push_path, body, QUEUE_HEADERS, connections, 1, script)["rate"]

        contenders = {
            "direct_sequential": lambda: rate(lambda: trigger_one(direct)),
            "entrypoint": lambda: wrk(app),
            "seed": lambda: load(seed.url + push_path, seed_body, SEED_HEADERS, CONNECTIONS, 1, script)[
                "rate"
            ],
            "entrypoint_1_connection": lambda: wrk(app, 1),
            "entrypoint_batch_events": lambda: (
                10 * load(batch_url, batch.body, QUEUE_HEADERS, CONNECTIONS, 1, script)["rate"]
            ),
        }
        for label, server in others.items():
            contenders[label] = lambda server=server: wrk(server)
        results = alternate(ctx.rounds, contenders)
        direct.close()
        rss = memory(app, push_url, body, script, warmed_up_kib)
    direct_rate = results["direct_sequential"]
    overhead = [
        1e6 / worker - 1e6 / alone
        for worker, alone in zip(results["entrypoint_1_connection"], direct_rate, strict=True)
    ]
    rows = [
        Row.from_rounds(
            f"worker /worker/push tasks, {CONNECTIONS} in flight, app.yaml's entrypoint",
            "tasks/s",
            results["entrypoint"],
            direct_rate,
            goal="≥ 70% of direct sequential",
            at_least=0.7,
            baseline=DIRECT,
        ),
        Row.from_rounds(
            f"worker /worker/push tasks, {CONNECTIONS} in flight, app.yaml's entrypoint",
            "tasks/s",
            results["entrypoint"],
            results["seed"],
            goal="≥ 3x the seed's worker",
            at_least=3,
            baseline=SEED,
        ),
        Row.from_rounds(
            f"seed-style worker, {CONNECTIONS} in flight, app.yaml's entrypoint",
            "tasks/s",
            results["seed"],
            direct_rate,
            baseline=DIRECT,
        ),
        *(
            Row.from_rounds(
                f"worker /worker/push tasks, {CONNECTIONS} in flight, {label}",
                "tasks/s",
                results[label],
                direct_rate,
                baseline=DIRECT,
            )
            for label in others
        ),
        Row.from_rounds(
            "worker /worker/push tasks, one at a time, app.yaml's entrypoint",
            "tasks/s",
            results["entrypoint_1_connection"],
            direct_rate,
            baseline=DIRECT,
        ),
        Row(
            "per-task overhead of the worker and its server (one at a time)",
            "µs",
            median(overhead),
            baseline="",
        ),
        Row.from_rounds(
            f"worker /worker/batch (10 events a task), {CONNECTIONS} in flight, app.yaml's entrypoint",
            "events/s",
            results["entrypoint_batch_events"],
            direct_rate,
            baseline=DIRECT,
        ),
        Row(
            f"worker RSS (every process) after {rss['samples'][-1]['tasks']:,} tasks",
            "KiB",
            rss["end_kib"],
            rss["start_kib"],
            goal="flat (≤ 1.1x)",
            met=rss["end_kib"] <= rss["start_kib"] * 1.1,
            baseline="RSS after warm-up",
        ),
    ]
    details = {
        "entrypoint": entry,
        "candidates": candidates,
        "per_second": results,
        "per_task_overhead_us": median(overhead),
        "memory": rss,
    }
    return rows, details
