"""A load run through the whole path: none lost, duplicates counted, speed reported.

``RELIABILITY_LOAD_EVENTS`` events (1,000 by default; ``RELIABILITY.md`` reports a run of
10,000) are posted by 8 clients at once to ``POST /push/<channel>/<event>``; the Cloud
Tasks emulator dispatches them to the worker under gunicorn, which triggers them on
soketi; a websocket subscriber counts them by id. Posted faster than the emulator
dispatches (one task at a time), they wait in its queue: the latency of that run is
mostly queueing. A second, paced run (one client, ~100 events/s, below the dispatch rate)
measures the latency of the path itself. The figures (throughput, p50/p99 latency from
the post to the subscriber) go to ``test-output/reliability/load*.json``. Speed is
reported, never asserted.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from tests.support.reliability import EventStream, Figures, Stack, reliability_stack, settle

EVENTS = int(os.environ.get("RELIABILITY_LOAD_EVENTS", "1000"))
PACED_EVENTS = 500
CLIENTS = 8

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(120 + EVENTS // 20)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def speed(stream: EventStream, stack: Stack, started: float, posted: float) -> dict[str, float]:
    """Throughput and latency (post to subscriber) of the events ``stream`` posted."""
    seen_at = stack.subscriber.first_seen
    latencies = [(seen_at[i] - stream.posted_at[i]) * 1000 for i in stream.accepted if i in seen_at]
    finished = max(seen_at[i] for i in stream.accepted if i in seen_at)
    return {
        "seconds_to_accept": round(posted - started, 2),
        "seconds_end_to_end": round(finished - started, 2),
        "accepted_per_second": round(len(stream.accepted) / (posted - started), 1),
        "delivered_per_second": round(len(latencies) / (finished - started), 1),
        "latency_ms_p50": round(percentile(latencies, 0.50), 1),
        "latency_ms_p99": round(percentile(latencies, 0.99), 1),
        "latency_ms_max": round(max(latencies), 1),
        "latency_ms_mean": round(statistics.fmean(latencies), 1),
    }


@pytest.fixture(scope="module")
def stack():
    with reliability_stack("load", {"PUSHER_MAX_ATTEMPTS": "1000"}, through_proxy=False) as running:
        yield running


def test_load_run_loses_nothing(stack):
    stream = EventStream(stack.app, "load")
    started = time.monotonic()
    stream.post_concurrently(EVENTS, CLIENTS)
    posted = time.monotonic()
    parked = settle(stack, stream.accepted, timeout=60 + EVENTS / 20)
    figures = Figures.count(
        "test_load_run_loses_nothing",
        f"none: {EVENTS} events from {CLIENTS} clients at once",
        stream,
        stack,
        parked,
        clients=CLIENTS,
        **speed(stream, stack, started, posted),
    )
    figures.write("load" if EVENTS == 1000 else f"load-{EVENTS}")
    assert figures.accepted == EVENTS
    assert figures.lost == 0 and figures.parked == 0 and figures.dropped_by_soketi == 0
    assert figures.delivered == EVENTS


def test_paced_run_latency(stack):
    stream = EventStream(stack.app, "paced")
    started = time.monotonic()
    stream.post_paced(PACED_EVENTS, interval=0.01).join()
    posted = time.monotonic()
    parked = settle(stack, stream.accepted)
    figures = Figures.count(
        "test_paced_run_latency",
        f"none: {PACED_EVENTS} events from one client, ~100/s",
        stream,
        stack,
        parked,
        clients=1,
        **speed(stream, stack, started, posted),
    )
    figures.write("load-paced")
    assert figures.accepted == PACED_EVENTS
    assert figures.lost == 0 and figures.parked == 0 and figures.delivered == PACED_EVENTS
