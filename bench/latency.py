"""End-to-end latency: ``POST /push`` to the websocket subscriber, through the real path.

The app runs with ``app.yaml``'s entrypoint (its processes and threads); the Cloud Tasks
emulator dispatches its tasks to the worker, which triggers on the one soketi; a websocket
subscriber receives the events. Events are published at a fixed rate (each at its own slot
of the schedule, by 8 publishing threads, so a slow answer does not delay the next) and
carry their number; the latency of an event is from just before its ``POST /push`` to its
arrival at the subscriber. Every event must arrive: a missing one stops the benchmark.

The same schedule is also sent straight to the worker (``POST /worker/push`` with the queue's
headers, as the emulator sends it): the difference between the two is the queue's share.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support.appserver import running_stack
from tests.support.subscriber import Subscriber

from .context import Context
from .report import Row
from .worker import APP_ENV, PUBLISHER_TOKEN

CHANNEL = "latency"
RATES = {50: 10.0, 500: 6.0}  # events/s: seconds of publishing
PUBLISHERS = 8


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def receive(subscriber: Subscriber, count: int, arrivals: dict[int, float], timeout: float) -> None:
    """Note when each of ``count`` events arrives (``time.perf_counter``)."""
    deadline = time.monotonic() + timeout
    while len(arrivals) < count and time.monotonic() < deadline:
        try:
            message = json.loads(subscriber.ws.recv(timeout=1))
        except TimeoutError:
            continue
        if message.get("event") == "pusher:ping":
            subscriber.send("pusher:pong", {})
        elif message.get("channel") == CHANNEL:
            arrivals[json.loads(message["data"])["n"]] = time.perf_counter()


ROUTES = {
    "queue": (f"/push/{CHANNEL}/tick", {"Authorization": f"Bearer {PUBLISHER_TOKEN}"}, 202),
    "worker": (f"/worker/push/{CHANNEL}/tick", {"X-AppEngine-QueueName": "pusher"}, 200),
}


def publish(app_url: str, rate: int, seconds: float, route: str) -> tuple[dict[int, float], dict[int, float]]:
    """POST ``rate`` events a second for ``seconds`` to ``route`` (a key of :data:`ROUTES`);
    when each was sent, and when its answer came."""
    path, headers, expected = ROUTES[route]
    count = int(rate * seconds)
    sent: dict[int, float] = {}
    answered: dict[int, float] = {}
    local = threading.local()
    start = time.perf_counter() + 0.2

    def one(number: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=app_url, timeout=30)
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[number] = time.perf_counter()
        answer = client.post(path, json={"n": number}, headers=headers)
        answered[number] = time.perf_counter()
        if answer.status_code != expected:
            raise RuntimeError(f"POST {path} answered {answer.status_code}: {answer.text}")

    with ThreadPoolExecutor(PUBLISHERS) as pool:
        for future in [pool.submit(one, number) for number in range(count)]:
            future.result()
    return sent, answered


def sent_and_arrived(
    app_url: str, ws_url: str, rate: int, seconds: float, route: str = "queue", wait: float = 60
) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    """Publish ``rate`` events/s for ``seconds`` while a subscriber receives them (waiting
    ``wait`` s more): when each was sent, answered and arrived. Raises if one never arrived."""
    count = int(rate * seconds)
    arrivals: dict[int, float] = {}
    with Subscriber(ws_url) as subscriber:
        subscriber.subscribe(CHANNEL)
        receiver = threading.Thread(target=receive, args=(subscriber, count, arrivals, seconds + wait))
        receiver.start()
        sent, answered = publish(app_url, rate, seconds, route)
        receiver.join()
    missing = sorted(set(range(count)) - set(arrivals))
    if missing:
        raise RuntimeError(f"{len(missing)} of {count} events never arrived (first: {missing[:5]})")
    return sent, answered, arrivals


def measure(app_url: str, ws_url: str, rate: int, seconds: float, route: str = "queue") -> dict[str, Any]:
    count = int(rate * seconds)
    sent, answered, arrivals = sent_and_arrived(app_url, ws_url, rate, seconds, route)
    latencies = [(arrivals[n] - sent[n]) * 1000 for n in range(count)]
    answers = [(answered[n] - sent[n]) * 1000 for n in range(count)]
    return {
        "rate": rate,
        "route": route,
        "achieved_rate": count / (max(sent.values()) - min(sent.values())),
        "answer_p50_ms": statistics.median(answers),
        "answer_p99_ms": percentile(answers, 0.99),
        "events": count,
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "latencies_ms": latencies,
    }


def distribution(details: dict[str, Any]) -> dict[str, list[float]]:
    """Each run's latencies (ms) under a label for the plot."""
    labels = {"queue": "POST /push through the queue", "worker": "POST /worker/push, no queue"}
    return {
        f"{run['rate']}/s, {labels[run['route']]} (p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms)": (
            run["latencies_ms"]
        )
        for run in details.values()
        if isinstance(run, dict)
    }


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    env = {"PUSHER_URL": ctx.server.url, **APP_ENV}
    results = {}
    with running_stack(env, workers=None, threads=None, name="bench-latency-app") as stack:
        measure(stack.app.url, ctx.server.ws_url, 50, 1)  # warm up
        for rate, seconds in RATES.items():
            for route in ROUTES:
                results[f"{rate} {route}"] = measure(stack.app.url, ctx.server.ws_url, rate, seconds, route)
    rows = []
    for result in results.values():
        where = "POST /push, queue, worker" if result["route"] == "queue" else "POST /worker/push (no queue)"
        reached = f"{result['achieved_rate']:.0f}/s reached"
        label = f"{where} to the subscriber, {result['rate']} events/s ({reached})"
        rows += [Row(f"{label}, {name}", "ms", result[f"{name}_ms"], baseline="") for name in ("p50", "p99")]
        if result["route"] == "queue":
            rows.append(
                Row(
                    f"POST /push answered (202), {result['rate']} events/s, p99",
                    "ms",
                    result["answer_p99_ms"],
                    baseline="",
                )
            )
    details = {
        key: {name: value for name, value in result.items() if name != "latencies_ms"}
        | {"latencies_ms": [round(v, 2) for v in result["latencies_ms"]]}
        for key, result in results.items()
    }
    return rows, details
