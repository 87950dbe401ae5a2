"""``python -m capacity --rate N``: the plan for N events/s on F1, F2 and F4, then the
simulation of the chosen class on Cloud Tasks and App Engine, with its plot.

Results go to ``test-output/capacity/`` (``capacity-N.png`` and ``capacity-N.json``).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

from . import inputs, model, plot, sim

OUT = inputs.ROOT / "test-output" / "capacity"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m capacity", description=__doc__)
    parser.add_argument("--rate", type=float, required=True, help="events/s to plan for")
    parser.add_argument("--events-per-request", type=int, default=1)
    parser.add_argument("--channels-per-event", type=int, default=1)
    parser.add_argument("--payload-bytes", type=int, default=200)
    parser.add_argument("--instance-class", choices=sorted(inputs.INSTANCE_CLASSES), default="F1")
    parser.add_argument("--max-concurrent-requests", type=int, default=inputs.GRANIAN_BACKPRESSURE)
    parser.add_argument("--target-cpu", type=float, default=inputs.APPENGINE_DEFAULT_TARGET_CPU)
    parser.add_argument("--target-throughput", type=float, default=inputs.APPENGINE_DEFAULT_TARGET_THROUGHPUT)
    parser.add_argument("--min-instances", type=int, default=1)
    parser.add_argument("--max-instances", type=int, default=1000)
    parser.add_argument("--startup-s", type=float, default=inputs.INSTANCE_STARTUP_S)
    parser.add_argument("--pusher-ms", type=float, default=inputs.PUSHER_LATENCY_S * 1000, help="median")
    parser.add_argument("--shards", type=int, help="queues (default: as many as the plan needs)")
    parser.add_argument("--seconds", type=float, default=60, help="simulated seconds of publishing")
    parser.add_argument("--pattern", choices=("poisson", "bursty", "fixed"), default="poisson")
    parser.add_argument(
        "--error-burst",
        action="append",
        default=[],
        metavar="START:SECONDS:SHARE",
        help="Pusher fails SHARE of its calls (429/5xx) for SECONDS from START (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args(argv)


def cloud_run(args: argparse.Namespace, plan: model.Plan, queue: inputs.QueueSettings) -> sim.Result:
    """Simulate ``plan``'s deployment (Cloud Tasks and App Engine) for the command line's load."""
    mix = model.Mix(args.events_per_request, args.channels_per_event, args.payload_bytes)
    bursts = tuple(tuple(float(part) for part in burst.split(":")) for burst in args.error_burst)
    return sim.simulate(
        sim.Arrivals(args.rate, args.seconds, args.events_per_request, args.pattern),
        sim.Queues(queue, shards=args.shards or plan.queues, max_attempts=inputs.max_attempts()),
        model.instances(
            mix,
            inputs.INSTANCE_CLASSES[args.instance_class],
            inputs.bench_figures(),
            scaling(args),
            min_instances=args.min_instances,
            max_instances=args.max_instances,
            startup_s=args.startup_s,
        ),
        sim.Pusher(args.pusher_ms / 1000, inputs.PUSHER_LATENCY_SIGMA, bursts),  # type: ignore[arg-type]
        seed=args.seed,
    )


def scaling(args: argparse.Namespace) -> model.Scaling:
    return model.Scaling(
        args.max_concurrent_requests, args.target_cpu, args.target_throughput, args.pusher_ms / 1000
    )


def plan_table(plans: list[model.Plan]) -> str:
    """The plans side by side, one column per instance class."""
    rows = [
        ("tasks/s", lambda p: f"{p.tasks_per_second:,.0f}"),
        ("events per task", lambda p: f"{p.events_per_task:g}"),
        ("Pusher API calls/s", lambda p: f"{p.pusher_calls_per_second:,.0f}"),
        ("task size, B", lambda p: f"{p.task_bytes:,}"),
        ("queues (shards)", lambda p: f"{p.queues}"),
        ("tasks in flight per queue", lambda p: f"{p.in_flight_per_queue:,.1f}"),
        ("CPU per task, ms", lambda p: f"{p.cpu_per_task_s * 1000:.2f}"),
        ("CPU per POST /push, ms", lambda p: f"{p.cpu_per_request_s * 1000:.2f}"),
        (
            "instances (CPU / slots bound)",
            lambda p: f"{p.instances_for_cpu:.1f} / {p.instances_for_slots:.1f}",
        ),
        ("instances", lambda p: f"{p.instances}"),
        ("latency POST /push to Pusher, ms", lambda p: f"{p.latency_s * 1000:.0f}"),
        ("instance hours per million events", lambda p: f"{p.instance_hours_per_million:.3f}"),
        ("cost per million events, $", lambda p: f"{p.cost_per_million:.4f}"),
    ]
    lines = ["| | " + " | ".join(p.instance_class for p in plans) + " |", "| --- |" + " ---: |" * len(plans)]
    lines += [f"| {name} | " + " | ".join(cell(p) for p in plans) + " |" for name, cell in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    queue = inputs.push_queue()
    bench = inputs.bench_figures()
    mix = model.Mix(args.events_per_request, args.channels_per_event, args.payload_bytes)
    plans = [
        model.plan(args.rate, mix, klass, queue, bench, scaling(args), args.min_instances)
        for klass in inputs.INSTANCE_CLASSES.values()
    ]
    print(f"# Plan for {args.rate:,.0f} events/s ({mix}), queues as queue.yaml's {queue.name!r}")
    print(plan_table(plans))
    for warning in sorted({w for p in plans for w in p.warnings}):
        print(f"warning: {warning}")
    chosen = next(p for p in plans if p.instance_class == args.instance_class)
    result = cloud_run(args, chosen, queue)
    summary = result.summary()
    print(f"\n# Simulated: {args.seconds:g} s of {args.pattern} arrivals on {args.instance_class}")
    for key, value in summary.items():
        print(
            f"{key}: {value:,.4g}"
            if isinstance(value, float) and not math.isnan(value)
            else f"{key}: {value}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"capacity-{args.rate:g}"
    plot.timeline(
        result.series, args.out / f"{name}.png", f"{args.rate:,.0f} events/s on {args.instance_class}"
    )
    record = {"plans": [asdict(p) for p in plans], "simulated": summary, "series": result.series}
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=1, default=str))
    print(f"plot: {args.out / name}.png")


if __name__ == "__main__":
    main()
