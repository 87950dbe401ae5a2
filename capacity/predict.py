"""``python -m capacity.predict``: the model's predictions for 1,000, 10,000 and 100,000
events/s on Cloud Tasks and App Engine, planned and simulated (docs/capacity.md, "Predictions").

The queues are queue.yaml's ``pusher`` sharded by channel (``TASKS_QUEUE_SHARDS``) at Cloud
Tasks' top rate, 500/s each. Shards are independent and App Engine spreads their tasks over
one pool, so a run simulates a slice (a few shards with their share of the load and of the
instances, warm: the steady state) and scales its instances and cost back up.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

from . import inputs, model, sim

RATES = (1_000, 10_000, 100_000)
MIXES = {"1 event a request": model.Mix(1), "10 events a request": model.Mix(10)}
SLICE_QUEUES = 4  # shards simulated at most


def predict(rate: float, mix: model.Mix, klass: str, seconds: float, seed: int = 1) -> dict[str, float]:
    """Plan ``rate`` of ``mix`` on ``klass``, then simulate a slice of the plan."""
    queue = replace(
        inputs.push_queue(),
        rate=inputs.TASKS_MAX_DISPATCHES_PER_SECOND,
        bucket_size=inputs.TASKS_MAX_BURST,
    )
    bench = inputs.bench_figures()
    instance = inputs.INSTANCE_CLASSES[klass]
    plan = model.plan(rate, mix, instance, queue, bench)
    shards = min(plan.queues, SLICE_QUEUES)
    share = shards / plan.queues
    warm = max(1, math.ceil(plan.instances * share))
    result = sim.simulate(
        sim.Arrivals(rate * share, seconds, mix.events_per_request),
        sim.Queues(queue, shards=shards),
        model.instances(mix, instance, bench, initial=warm),
        sim.Pusher(inputs.PUSHER_LATENCY_S, inputs.PUSHER_LATENCY_SIGMA),
        seed=seed,
    )
    summary = result.summary()
    return {
        "plan": plan,
        "throughput": summary["throughput"] / share,
        "p50_s": summary["p50_s"],
        "p99_s": summary["p99_s"],
        "instances": summary["max_instances"] / share,
        "instance_hours_per_million": summary["instance_hours_per_million"],
        "cost_per_million": summary["instance_hours_per_million"] * instance.price_per_hour,
    }


def table(seconds: float, klass: str) -> str:
    lines = [
        "| events/s | mix | queues | tasks/s | Pusher calls/s | instances F1 / F2 / F4 (plan) "
        f"| simulated on {klass}: events/s | p50, ms | p99, ms | instances "
        "| instance-h / M events | $ / M events |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    queue = replace(inputs.push_queue(), rate=inputs.TASKS_MAX_DISPATCHES_PER_SECOND)
    bench = inputs.bench_figures()
    for rate in RATES:
        for name, mix in MIXES.items():
            plans = [model.plan(rate, mix, c, queue, bench) for c in inputs.INSTANCE_CLASSES.values()]
            got = predict(rate, mix, klass, seconds)
            plan = got["plan"]
            lines.append(
                f"| {rate:,} | {name} | {plan.queues} | {plan.tasks_per_second:,.0f} "
                f"| {plan.pusher_calls_per_second:,.0f} | {' / '.join(str(p.instances) for p in plans)} "
                f"| {got['throughput']:,.0f} | {got['p50_s'] * 1000:,.0f} | {got['p99_s'] * 1000:,.0f} "
                f"| {got['instances']:,.0f} | {got['instance_hours_per_million']:.3f} "
                f"| {got['cost_per_million']:.3f} |"
            )
            print(lines[-1], flush=True)
    return "\n".join(lines)


SCALING_VARIANTS = {
    "App Engine's defaults (10 requests, CPU 0.6)": model.Scaling(inputs.APPENGINE_DEFAULT_CONCURRENT),
    "64 requests, CPU 0.6": model.Scaling(64),
    "64 requests, CPU 0.75": model.Scaling(64, 0.75),
    "64 requests, CPU 0.9": model.Scaling(64, 0.9),
}


def scaling_table(rate: float, seconds: float, klass: str, pattern: str) -> str:
    """automatic_scaling variants under ``pattern`` arrivals (bursty: 5x the rate a tenth of
    the time) on the queues the plan asks for, from the plan's instances: latency, instances, cost."""
    instance = inputs.INSTANCE_CLASSES[klass]
    bench = inputs.bench_figures()
    queue = inputs.push_queue()
    lines = [
        f"| {rate:,.0f} events/s, {pattern}, {klass} | p50, ms | p99, ms | most instances "
        "| instance-h / M events | $ / M events |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, scaling in SCALING_VARIANTS.items():
        plan = model.plan(rate, model.Mix(), instance, queue, bench, scaling)
        result = sim.simulate(
            sim.Arrivals(rate, seconds, pattern=pattern),
            sim.Queues(queue, shards=plan.queues),
            model.instances(model.Mix(), instance, bench, scaling, initial=plan.instances),
            sim.Pusher(inputs.PUSHER_LATENCY_S, inputs.PUSHER_LATENCY_SIGMA),
        ).summary()
        lines.append(
            f"| {name} | {result['p50_s'] * 1000:,.0f} | {result['p99_s'] * 1000:,.0f} "
            f"| {result['max_instances']} | {result['instance_hours_per_million']:.3f} "
            f"| {result['instance_hours_per_million'] * instance.price_per_hour:.3f} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m capacity.predict", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--instance-class", choices=sorted(inputs.INSTANCE_CLASSES), default="F1")
    parser.add_argument("--scaling", type=float, metavar="RATE", help="compare automatic_scaling settings")
    parser.add_argument("--pattern", choices=("poisson", "bursty"), default="poisson")
    args = parser.parse_args(argv)
    if args.scaling:
        print(scaling_table(args.scaling, args.seconds, args.instance_class, args.pattern))
    else:
        print(table(args.seconds, args.instance_class))


if __name__ == "__main__":
    main()
