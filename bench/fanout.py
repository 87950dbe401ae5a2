"""Fan-out: a burst of ``trigger_async`` calls (google-cloud-ndb futures) in flight together."""

from __future__ import annotations

from typing import Any

from . import clients
from .clients import CHANNEL, DATA, EVENT
from .context import Context
from .report import Row
from .rounds import alternate, rate
from .sequential import trigger_one

BURST = 1000
BATCH_SIZE = 10


def burst(client: Any, size: int = BURST) -> int:
    """``size`` events through ``trigger_async`` in one NDB context; wait for every answer."""
    with clients.ndb_context():
        futures = [client.trigger_async(CHANNEL, EVENT, DATA) for _ in range(size)]
        for future in futures:
            if future.get_result() != {"ok": True}:
                raise RuntimeError(f"unexpected answer {future.get_result()!r}")
    return size


def batch_burst(client: Any, calls: int = BURST // BATCH_SIZE) -> int:
    """``calls`` ``trigger_batch_async`` calls of 10 events each, in one NDB context."""
    batch = [{"channel": CHANNEL, "name": EVENT, "data": DATA}] * BATCH_SIZE
    with clients.ndb_context():
        futures = [client.trigger_batch_async(batch) for _ in range(calls)]
        for future in futures:
            future.get_result()
    return calls * BATCH_SIZE


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    in_flight = clients.IN_FLIGHT
    mine, official = clients.ours(ctx.server, in_flight), clients.theirs(ctx.server)
    burst(mine, 200)  # warm up
    rate(lambda: trigger_one(official), 0.2)
    results = alternate(
        ctx.rounds,
        {
            "ours_fanout": lambda: rate(lambda: burst(mine)),
            "official_sequential": lambda: rate(lambda: trigger_one(official)),
            f"server_{in_flight}_connections": lambda: ctx.wrk.run(in_flight)["rate"],
        },
    )
    mine.close()
    row = Row.from_rounds(
        f"fan-out trigger_async, NDB futures ({in_flight} in flight)",
        "events/s",
        results["ours_fanout"],
        results["official_sequential"],
        results[f"server_{in_flight}_connections"],
        goal="≥ 5x official sequential; near the server's limit",
        at_least=5,
    )
    return [row], {"events_per_second": results, "burst": BURST, "in_flight": in_flight}
