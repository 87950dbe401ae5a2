"""Batching: ``trigger_batch`` with 10 events per call, against single events and the server."""

from __future__ import annotations

from typing import Any

from . import clients
from .clients import CHANNEL, DATA, EVENT
from .context import Context
from .fanout import BATCH_SIZE, batch_burst
from .report import Row
from .rounds import alternate, rate
from .sequential import trigger_one

BATCH = [{"channel": CHANNEL, "name": EVENT, "data": DATA}] * BATCH_SIZE


def trigger_batch(client: Any) -> int:
    client.trigger_batch(BATCH)
    return BATCH_SIZE


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    in_flight = clients.IN_FLIGHT
    mine, official = clients.ours(ctx.server, in_flight), clients.theirs(ctx.server)
    batch_body = clients.batch_body(BATCH_SIZE)
    for step in (lambda: trigger_batch(mine), lambda: trigger_batch(official), lambda: batch_burst(mine)):
        rate(step, 0.2)  # warm up
    results = alternate(
        ctx.rounds,
        {
            "ours_batch": lambda: rate(lambda: trigger_batch(mine)),
            "official_batch": lambda: rate(lambda: trigger_batch(official)),
            "official_single": lambda: rate(lambda: trigger_one(official)),
            "server_batch_1_connection": lambda: (
                BATCH_SIZE * ctx.wrk.run(1, batch_body, "batch_events")["rate"]
            ),
            "ours_batch_fanout": lambda: rate(lambda: batch_burst(mine)),
            f"server_batch_{in_flight}_connections": lambda: (
                BATCH_SIZE * ctx.wrk.run(in_flight, batch_body, "batch_events")["rate"]
            ),
        },
    )
    mine.close()
    single, server_1 = results["official_single"], results["server_batch_1_connection"]
    rows = [
        Row.from_rounds(
            "trigger_batch, 10 events per call, sequential",
            "events/s",
            results["ours_batch"],
            single,
            server_1,
            goal="≥ 10x official single-event sequential",
            at_least=10,
        ),
        Row.from_rounds(
            "trigger_batch vs the official trigger_batch",
            "events/s",
            results["ours_batch"],
            results["official_batch"],
            server_1,
        ),
        Row.from_rounds(
            f"fan-out trigger_batch_async ({in_flight} in flight) vs official single events",
            "events/s",
            results["ours_batch_fanout"],
            single,
            results[f"server_batch_{in_flight}_connections"],
        ),
    ]
    return rows, {"events_per_second": results}
