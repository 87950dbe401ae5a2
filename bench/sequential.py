"""Sequential ``trigger``: one process, one event per call, each call waiting for its answer."""

from __future__ import annotations

from typing import Any

from . import clients
from .clients import CHANNEL, DATA, EVENT
from .context import Context
from .report import Row
from .rounds import alternate, rate


def trigger_one(client: Any) -> int:
    client.trigger(CHANNEL, EVENT, DATA)
    return 1


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    mine, official = clients.ours(ctx.server), clients.theirs(ctx.server)
    for client in (mine, official):
        rate(lambda client=client: trigger_one(client), 0.2)  # warm up
    results = alternate(
        ctx.rounds,
        {
            "ours": lambda: rate(lambda: trigger_one(mine)),
            "official": lambda: rate(lambda: trigger_one(official)),
            "server_1_connection": lambda: ctx.wrk.run(1)["rate"],
        },
    )
    mine.close()
    row = Row.from_rounds(
        "sequential trigger (one connection's worth)",
        "events/s",
        results["ours"],
        results["official"],
        results["server_1_connection"],
        goal="≥ 2.5x official",
        at_least=2.5,
    )
    return [row], {"events_per_second": results}
