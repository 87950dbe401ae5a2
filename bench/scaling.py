"""Cost that grows with the work: throughput and latency against payload size and concurrency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import clients
from .clients import CHANNEL, EVENT
from .context import Context
from .fanout import burst
from .report import Row
from .rounds import alternate, median, median_ratio, rate

PAYLOAD_BYTES = (100, 1000, 4000, 10000)
# The payload curve takes fewer, shorter rounds than the headline figures; the concurrency
# curve (the plot) all of them, shorter.
PAYLOAD_ROUNDS = 3
CURVE_SECONDS = 0.4
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64)


def payload(size: int) -> str:
    """Event data of exactly ``size`` bytes."""
    return "x" * size


def payloads(ctx: Context) -> dict[str, Any]:
    """Sequential triggers of each payload size: ours, official, wrk on one connection."""
    mine, official = clients.ours(ctx.server), clients.theirs(ctx.server)
    found: dict[str, Any] = {}
    for size in PAYLOAD_BYTES:
        data = payload(size)

        def one(client: Any, data: str = data) -> int:
            client.trigger(CHANNEL, EVENT, data)
            return 1

        rate(lambda: one(mine), 0.1)
        rate(lambda: one(official), 0.1)
        results = alternate(
            min(ctx.rounds, PAYLOAD_ROUNDS),
            {
                "ours": lambda: rate(lambda: one(mine), CURVE_SECONDS),
                "official": lambda: rate(lambda: one(official), CURVE_SECONDS),
                "server": lambda data=data: ctx.wrk.run(1, clients.event_body(data))["rate"],
            },
        )
        found[str(size)] = {
            **{name: median(values) for name, values in results.items()},
            "ours_latency_us": 1e6 / median(results["ours"]),
            "official_latency_us": 1e6 / median(results["official"]),
            "ours_mb_per_s": median(results["ours"]) * size / 1e6,
            "ratio_vs_official": median_ratio(results["ours"], results["official"]),
            "rounds": results,
        }
    mine.close()
    return found


def threads_rate(in_flight: int, seconds: float, server: Any) -> float:
    """The official library at ``in_flight`` concurrent requests: one client per thread."""
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    counts = [0]

    def worker() -> None:
        client, sent = clients.theirs(server), 0
        while time.perf_counter() < deadline:
            client.trigger(CHANNEL, EVENT, clients.DATA)
            sent += 1
        with lock:
            counts[0] += sent

    start = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        for _ in range(in_flight):
            pool.submit(worker)
    return counts[0] / (time.perf_counter() - start)


def concurrency(ctx: Context) -> dict[str, Any]:
    """Requests in flight from 1 to 64: ours (NDB futures), official (threads), wrk."""
    return {str(in_flight): at_concurrency(ctx, in_flight) for in_flight in CONCURRENCY}


def at_concurrency(ctx: Context, in_flight: int) -> dict[str, Any]:
    mine = clients.ours(ctx.server, in_flight)
    size = max(200, 50 * in_flight)
    burst(mine, size)
    wrk: dict[str, list[float]] = {"mean_us": [], "p99_us": []}

    def server() -> float:
        measured = ctx.wrk.run(in_flight)
        wrk["mean_us"].append(measured["mean_us"])
        wrk["p99_us"].append(measured["p99_us"])
        return measured["rate"]

    results = alternate(
        ctx.rounds,
        {
            "ours": lambda: rate(lambda: burst(mine, size), CURVE_SECONDS),
            "official": lambda: threads_rate(in_flight, CURVE_SECONDS, ctx.server),
            "server": server,
        },
    )
    mine.close()
    return {
        **{name: median(values) for name, values in results.items()},
        # Little's law: mean time in flight = requests in flight / throughput.
        "ours_latency_us": in_flight * 1e6 / median(results["ours"]),
        "official_latency_us": in_flight * 1e6 / median(results["official"]),
        "server_latency_us": median(wrk["mean_us"]),
        "server_p99_us": median(wrk["p99_us"]),
        "ratio_vs_official": median_ratio(results["ours"], results["official"]),
        "fraction_of_server": median_ratio(results["ours"], results["server"]),
        "rounds": results,
    }


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    by_size, by_concurrency = payloads(ctx), concurrency(ctx)
    rows = [
        Row.from_rounds(f"sequential trigger, {int(size):,} B of data", "events/s", *_contenders(measured))
        for size, measured in by_size.items()
    ]
    rows += [
        Row.from_rounds(
            f"{in_flight} in flight (ours: NDB futures; official: threads)",
            "events/s",
            *_contenders(measured),
        )
        for in_flight, measured in by_concurrency.items()
    ]
    return rows, {"payload_bytes": by_size, "concurrency": by_concurrency}


def _contenders(measured: dict[str, Any]) -> tuple[list[float], list[float], list[float]]:
    rounds = measured["rounds"]
    return rounds["ours"], rounds["official"], rounds["server"]


def latency_table(details: dict[str, Any]) -> str:
    """Mean latency per request (µs) by payload size and by requests in flight."""
    lines = [
        "| workload | pusherlib µs | official µs | wrk µs (p99) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for size, measured in details["payload_bytes"].items():
        lines.append(
            f"| sequential, {int(size):,} B of data | {measured['ours_latency_us']:,.0f} "
            f"| {measured['official_latency_us']:,.0f} | {1e6 / measured['server']:,.0f} |"
        )
    for in_flight, measured in details["concurrency"].items():
        lines.append(
            f"| {in_flight} in flight | {measured['ours_latency_us']:,.0f} "
            f"| {measured['official_latency_us']:,.0f} "
            f"| {measured['server_latency_us']:,.0f} ({measured['server_p99_us']:,.0f}) |"
        )
    intro = "Mean time per request (requests in flight / throughput; wrk's own figures in flight):"
    return intro + "\n\n" + ("\n".join(lines))
