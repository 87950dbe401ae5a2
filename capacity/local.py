"""``python -m capacity.local``: the real local path measured at several rates, and the same
configuration simulated, side by side (docs/capacity.md, "Checked against reality").

The stack is bench/latency.py's: the app under app.yaml's entrypoint, the Cloud Tasks emulator
and soketi, a websocket subscriber; events are published on a fixed schedule and timed from
their POST /push to their arrival. The simulation's local configuration is calibrated once,
apart from the compared runs, while a paused queue fills and then drains: each process's CPU
per POST /push and per dispatch (publisher and subscriber, app, emulator, soketi, read from
/proc), the POST /push answer time, and the dispatch path for which the simulated drain
matches the measured one (the share of the CPU on it, or the wait on I/O added to it). Each
compared run also records the cores that other work kept busy meanwhile, and its simulation
gets the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.latency import CHANNEL, PUBLISHERS, percentile, publish, receive, sent_and_arrived
from bench.worker import APP_ENV
from tests.support.appserver import Stack, running_stack
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber

from . import inputs, sim

OUT = inputs.ROOT / "test-output" / "capacity"
RATES = (50, 100, 200, 300, 400, 500)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU time so far of ``pids`` and every process below them."""
    total, pending = 0.0, list(pids)
    while pending:
        pid = pending.pop()
        total += cpu_seconds(pid)
        for task in Path(f"/proc/{pid}/task").iterdir():
            pending += [int(child) for child in (task / "children").read_text().split()]
    return total


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


class Meter:
    """CPU seconds of each process of the stack and of the whole machine, and the time."""

    def __init__(self, processes: dict[str, int]):
        self.processes = processes  # name: pid, counted with its children (but this process alone)

    def read(self) -> dict[str, float]:
        reading = {
            name: cpu_seconds(pid) if pid == os.getpid() else tree_cpu_seconds([pid])
            for name, pid in self.processes.items()
        }
        return reading | {"machine": machine_busy(), "time": time.monotonic()}

    def others_since(self, before: dict[str, float]) -> float:
        """Cores that other work kept busy on average since ``before`` (a :meth:`read`)."""
        now = self.read()
        ours = sum(now[name] - before[name] for name in self.processes)
        return max(0.0, now["machine"] - before["machine"] - ours) / (now["time"] - before["time"])


def per_event(start: dict[str, float], end: dict[str, float], names: tuple[str, ...], count: int) -> list:
    """``[name, CPU seconds per event]`` of each process in ``names`` between two readings."""
    return [[name, (end[name] - start[name]) / count] for name in names]


DISPATCH_PATH = ("emulator", "app", "soketi")  # the emulator waits for the app, which waits for soketi


def calibrate(stack: Stack, meter: Meter, ws_url: str, count: int = 800, rate: int = 400) -> dict[str, Any]:
    """Fill the paused queue with ``count`` events, then let it drain: each process's CPU per
    POST /push and per dispatch, the cores that other work kept busy meanwhile, the wall time
    per dispatch and the POST /push answer time."""
    arrivals: dict[int, float] = {}
    stack.emulator.pause("pusher")
    with Subscriber(ws_url) as subscriber:
        subscriber.subscribe(CHANNEL)
        receiver = threading.Thread(target=receive, args=(subscriber, count, arrivals, 120))
        receiver.start()
        before = meter.read()
        sent, answered = publish(stack.app.url, rate, count / rate, "queue")
        filled = meter.read()
        stack.emulator.resume("pusher")
        receiver.join()
    background = meter.others_since(before)
    drained = meter.read()
    times = sorted(arrivals.values())
    return {
        "events": count,
        "background_cores": background,
        "create": per_event(before, filled, ("publisher", "app", "emulator"), count),
        "dispatch": per_event(filled, drained, DISPATCH_PATH, count),
        "side": per_event(filled, drained, ("publisher",), count),  # the subscriber
        "dispatch_wall_s": (times[-1] - times[0]) / (len(times) - 1),
        "answer_s": statistics.median(answered[n] - sent[n] for n in sent),
    }


def simulate_local(rate: float, seconds: float, calibration: dict[str, Any], seed: int = 1) -> sim.Result:
    """The local stack in the simulation: the emulator's cycle, each process's steps, the
    machine's cores shared by them and by the other work measured during the runs."""
    create_cpu = sum(cpu for _, cpu in calibration["create"])
    share = calibration.get("critical_share", 1.0)
    path = tuple((name, cpu * share) for name, cpu in calibration["dispatch"])
    beside = tuple((name, cpu * (1 - share)) for name, cpu in calibration["dispatch"] if share < 1)
    return sim.simulate(
        sim.Arrivals(rate, seconds, pattern="fixed", publishers=PUBLISHERS),
        sim.Queues(
            inputs.push_queue(),
            create_s=max(0.0, calibration["answer_s"] - create_cpu),
            dispatch_delay_s=0,
            emulator=True,
        ),
        sim.Instances(
            cpu_per_task_s=0,
            cpu_per_batch_s=0,
            slots=inputs.GRANIAN_BACKPRESSURE,
            startup_s=0,
            min_instances=1,
            max_instances=1,
            target_cpu=1,
            price_per_hour=0,
            fixed=True,
        ),
        sim.Pusher(median_s=0, sigma=0),
        seed=seed,
        machine=sim.Machine(
            cores=os.cpu_count() or 1,
            background=calibration["background_cores"],
            create=tuple(map(tuple, calibration["create"])),
            dispatch=path,
            side=(*map(tuple, calibration["side"]), *beside),
            dispatch_wait_s=calibration.get("dispatch_wait_s", 0.0),
        ),
    )


def drain_wall(calibration: dict[str, Any]) -> float:
    """Seconds per dispatch of the calibration's backlog drained in the simulation."""
    count = int(calibration["events"])
    backlog = {**calibration, "answer_s": 0.0, "create": []}
    times = sorted(simulate_local(count * 1000, 1 / 1000, backlog).delivered_at)
    return (times[-1] - times[0]) / (len(times) - 1)


def fit_dispatch_path(calibration: dict[str, Any]) -> dict[str, float]:
    """The dispatch path for which the simulated drain takes the measured time per dispatch:
    if its CPU alone takes longer, the share of that CPU on the path (the rest runs beside it:
    soketi's websocket send, the app's logging after its answer); otherwise the wait on I/O
    added to it (bisection either way)."""
    wall = calibration["dispatch_wall_s"]
    whole = drain_wall({**calibration, "critical_share": 1.0, "dispatch_wait_s": 0.0}) > wall
    key, low, high = ("critical_share", 0.0, 1.0) if whole else ("dispatch_wait_s", 0.0, wall)
    fixed = {"critical_share": 1.0, "dispatch_wait_s": 0.0}
    for _ in range(20):
        middle = (low + high) / 2
        if drain_wall({**calibration, **fixed, key: middle}) < wall:
            low = middle
        else:
            high = middle
    return {**fixed, key: (low + high) / 2}


def run_once(app_url: str, ws_url: str, rate: int, seconds: float) -> dict[str, float]:
    """bench/latency.py's run (publishers, subscriber), timed from each event's sending:
    throughput from the first POST to the last arrival, p50 and p99 latency."""
    count = int(rate * seconds)
    sent, _, arrivals = sent_and_arrived(app_url, ws_url, rate, seconds, wait=120)
    latencies = [arrivals[n] - sent[n] for n in range(count)]
    return {
        "throughput": count / (max(arrivals.values()) - min(sent.values())),
        "sent_rate": count / (max(sent.values()) - min(sent.values())),
        "p50_s": statistics.median(latencies),
        "p99_s": percentile(latencies, 0.99),
    }


def measure_stack(
    soketi: Soketi, rates: tuple[int, ...], seconds: float, repeats: int, calibration_events: int = 800
) -> dict[str, Any]:
    """Start the stack on ``soketi``, calibrate, then measure every rate ``repeats`` times
    (alternating), with the cores other work kept busy during each run."""
    with running_stack({"PUSHER_URL": soketi.url, **APP_ENV}, workers=None, threads=None) as stack:
        run_once(stack.app.url, soketi.ws_url, 50, 1)  # warm up
        pids = (os.getpid(), stack.app.process.pid, stack.emulator.process.pid, soketi.process.pid)
        meter = Meter(dict(zip(("publisher", "app", "emulator", "soketi"), pids, strict=True)))
        calibration = calibrate(stack, meter, soketi.ws_url, calibration_events)
        runs: dict[int, list[dict[str, Any]]] = {rate: [] for rate in rates}
        for _ in range(repeats):
            for rate in rates:
                before = meter.read()
                run = run_once(stack.app.url, soketi.ws_url, rate, seconds)
                runs[rate].append({**run, "background_cores": meter.others_since(before)})
                print(rate, runs[rate][-1], flush=True)
    rows = [{"rate": rate, "measured": runs[rate]} for rate in rates]
    return {"seconds": seconds, "repeats": repeats, "calibration": calibration, "rows": rows}


def compare(rates: tuple[int, ...], seconds: float, repeats: int) -> dict[str, Any]:
    """:func:`measure_stack` on a soketi of its own."""
    with Soketi(name="capacity-soketi") as soketi:
        return measure_stack(soketi, rates, seconds, repeats)


def simulate_rows(report: dict[str, Any]) -> None:
    """Add the simulation of each measured rate to ``report``."""
    report["calibration"].update(fit_dispatch_path(report["calibration"]))
    for row in report["rows"]:
        background = statistics.median(run["background_cores"] for run in row["measured"])
        calibration = {**report["calibration"], "background_cores": background}
        row["simulated"] = simulate_local(row["rate"], report["seconds"], calibration).summary()


def _spread(values: list[float], scale: float = 1.0) -> str:
    values = [v * scale for v in values]
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def table(report: dict[str, Any]) -> str:
    """Measured (median of the runs, their range) against simulated, with the differences."""
    lines = [
        "| rate, events/s | throughput measured | simulated | diff | p99 measured, ms | simulated | diff |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        runs, simulated = row["measured"], row["simulated"]
        throughput = statistics.median(run["throughput"] for run in runs)
        p99 = statistics.median(run["p99_s"] for run in runs)
        cells = [
            str(row["rate"]),
            _spread([run["throughput"] for run in runs]),
            f"{simulated['throughput']:,.0f}",
            f"{simulated['throughput'] / throughput - 1:+.0%}",
            _spread([run["p99_s"] for run in runs], 1000),
            f"{simulated['p99_s'] * 1000:,.0f}",
            f"{simulated['p99_s'] / p99 - 1:+.0%}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m capacity.local", description=__doc__)
    parser.add_argument("--rates", type=int, nargs="+", default=list(RATES))
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of publishing per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--again", action="store_true", help="simulate the measurements saved in --out again")
    args = parser.parse_args(argv)
    saved = args.out / "local.json"
    if args.again:
        report = json.loads(saved.read_text())
    else:
        report = compare(tuple(args.rates), args.seconds, args.repeats)
    simulate_rows(report)
    args.out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["calibration"], indent=1))
    print(table(report))


if __name__ == "__main__":
    main()
