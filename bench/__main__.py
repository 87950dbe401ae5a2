"""``python -m bench``: every benchmark against one soketi.

Results go to ``test-output/bench/`` (not tracked); ``--save`` writes the committed
``bench/results/`` instead, for a run meant to be published in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.soketi import Soketi

from . import latency, plot, report, scaling
from .clients import Wrk
from .context import Context

MODULES = ("sequential", "fanout", "batch", "scaling", "worker", "app_cost", "latency", "coalescing")
RESULTS = Path(__file__).resolve().parent / "results"
LATEST = Path(__file__).resolve().parents[1] / "test-output" / "bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: rounds, which benchmarks, and where the results go (``out``)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per figure (default 5)")
    parser.add_argument("--only", nargs="*", choices=MODULES, help="run only these benchmarks")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=LATEST, help="results folder (default: test-output/bench)")
    where.add_argument("--save", action="store_const", dest="out", const=RESULTS, help="write bench/results/")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    info: dict[str, Any] = {"started": datetime.now(UTC).isoformat(timespec="seconds")}
    info["machine"] = report.machine()
    rows: list[report.Row] = []
    details: dict[str, Any] = {}
    server = Soketi(name="bench-soketi")
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="pusherlib-bench-") as workdir:
            ctx = Context(server, Wrk(server, Path(workdir)), args.rounds)
            for name in args.only or MODULES:
                module = importlib.import_module(f"bench.{name}")
                began = time.monotonic()
                print(f"== {name}", flush=True)
                new_rows, details[name] = module.run(ctx)
                details[name]["seconds"] = round(time.monotonic() - began, 1)
                rows += new_rows
                print(report.markdown_table(new_rows), flush=True)
    finally:
        server.stop()
    info["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    info["seconds"] = time.monotonic() - started
    extra = ""
    if "scaling" in details:
        image = args.out / "throughput-vs-concurrency.png"
        args.out.mkdir(parents=True, exist_ok=True)
        plot.throughput_vs_concurrency(
            details["scaling"]["concurrency"], image, "Trigger throughput against requests in flight"
        )
        extra = scaling.latency_table(details["scaling"])
        extra += f"\n\n![throughput against requests in flight]({image.name})"
    if "latency" in details:
        image = args.out / "latency.png"
        args.out.mkdir(parents=True, exist_ok=True)
        series = latency.distribution(details["latency"])
        plot.latency_distribution(series, image, "Latency to the websocket subscriber")
        extra += f"\n\n![latency from POST /push to the subscriber]({image.name})"
    report.write(args.out, info, rows, details, extra)
    print(f"results in {args.out} after {info['seconds']:.0f} s")


if __name__ == "__main__":
    main()
