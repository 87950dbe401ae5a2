"""The capacity model and its SimPy simulation: each mechanism on its own, deterministic seeds,
a few simulated seconds each (no servers)."""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import replace

import pytest

from capacity import __main__ as cli
from capacity import inputs, local, model, sim

QUEUE = inputs.QueueSettings("pusher", rate=200, bucket_size=200, max_concurrent=100, min_backoff_s=1,
                             max_backoff_s=300, max_doublings=5)  # fmt: skip
INSTANCES = sim.Instances(
    cpu_per_task_s=0.001,
    cpu_per_batch_s=0.002,
    slots=64,
    startup_s=5,
    min_instances=1,
    max_instances=50,
    target_cpu=0.6,
    price_per_hour=0.05,
)
PUSHER = sim.Pusher(median_s=0.03, sigma=0.6)


def run(rate: float, seconds: float = 10, *, queues: sim.Queues | None = None, **changes) -> sim.Result:
    arrivals = sim.Arrivals(
        rate, seconds, changes.pop("events_per_request", 1), changes.pop("pattern", "poisson")
    )
    pusher = changes.pop("pusher", PUSHER)
    return sim.simulate(arrivals, queues or sim.Queues(QUEUE), replace(INSTANCES, **changes), pusher, seed=7)


def test_queue_yaml_is_parsed_as_googles_tools_parse_it():
    queue = inputs.push_queue()
    assert queue.rate == 200 and queue.bucket_size == 200 and queue.max_concurrent == 100
    assert (queue.min_backoff_s, queue.max_backoff_s, queue.max_doublings) == (1, 300, 5)


def test_the_attempt_budget_is_app_yamls():
    assert inputs.max_attempts() == 20


def test_backoff_follows_cloud_tasks_retry_config_example():
    # RetryConfig's documented example: min 10 s, max 300 s, 3 doublings.
    queue = replace(QUEUE, min_backoff_s=10, max_backoff_s=300, max_doublings=3)
    assert [queue.backoff(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 240, 300, 300]


def test_the_queue_rate_caps_dispatch_and_shards_lift_the_cap():
    one = run(400, 10)
    assert one.throughput < 200 * 1.25  # 200/s, plus the bucket's first 200 tasks
    assert one.summary()["max_backlog"] > 1000
    three = run(400, 10, queues=sim.Queues(QUEUE, shards=3))
    assert three.throughput > 380 and three.summary()["max_backlog"] < 50


def test_coalescing_puts_up_to_ten_events_in_a_task():
    result = run(1000, 5, events_per_request=25)
    assert result.tasks == pytest.approx(result.events / 25 * 3, rel=0.01)  # 10 + 10 + 5
    assert len(result.delivered_at) == result.events


def test_a_task_that_always_fails_is_parked_after_max_attempts():
    failing = sim.Pusher(error_bursts=((0, 10_000, 1.0),))
    result = run(20, 5, queues=sim.Queues(QUEUE, max_attempts=3), pusher=failing)
    assert result.parked_events == result.events > 0 and not result.delivered_at
    assert result.attempts == 3 * result.tasks


def test_an_error_burst_delays_events_by_the_backoff_and_loses_none():
    burst = sim.Pusher(median_s=0.03, error_bursts=((2, 3, 1.0),))  # every call fails from 2 s to 5 s
    result = run(100, 10, pusher=burst)
    assert result.parked_events == 0 and len(result.delivered_at) == result.events
    assert result.failed_attempts > 0
    assert result.percentile(0.99) > 1.0  # waited for at least one backoff
    assert result.percentile(0.5) < 0.2


def test_instances_start_when_cpu_passes_the_target_and_serve_after_their_start_up():
    shards = sim.Queues(QUEUE, shards=2)
    result = run(300, 20, queues=shards, cpu_per_task_s=0.01)  # 3 CPU-seconds a second: 5 at 60%
    assert len(result.delivered_at) == result.events
    counts = [point["instances"] for point in result.series]
    assert counts[0] > 1 and max(counts) >= 5
    first_extra = next(point for point in result.series if point["instances"] > 1)
    assert first_extra["ready"] == 1  # the new ones are still starting
    assert result.cost > 0 and result.instance_hours_per_million > 0


def test_max_instances_bounds_the_pool_and_the_backlog_grows():
    result = run(300, 10, queues=sim.Queues(QUEUE, shards=2), cpu_per_task_s=0.01, max_instances=2)
    assert max(point["instances"] for point in result.series) == 2
    assert result.summary()["max_backlog"] > 500


def test_the_emulator_dispatches_one_task_at_a_time_every_poll():
    emulator = sim.Queues(QUEUE, create_s=0.005, emulator=True)
    machine = sim.Machine(cores=2, background=0, create=(), dispatch=(("emulator", 0.004),))
    arrivals = sim.Arrivals(50, 10, pattern="fixed")
    instant = sim.Pusher(median_s=0, sigma=0)
    spec = replace(INSTANCES, cpu_per_task_s=0.001, fixed=True)
    slow = sim.simulate(arrivals, emulator, spec, instant, machine=machine)
    assert 0.03 < slow.percentile(0.5) < 0.12  # half a 0.1 s poll on average
    busy = sim.simulate(replace(arrivals, rate=400, seconds=5), emulator, spec, instant, machine=machine)
    assert busy.throughput < 1 / 0.005 * 1.05  # 4 ms + 1 ms a task, one at a time


def test_a_process_runs_one_step_at_a_time_and_background_work_takes_cores():
    emulator = sim.Queues(QUEUE, create_s=0, emulator=True)
    spec = replace(INSTANCES, cpu_per_task_s=0, fixed=True)
    arrivals = sim.Arrivals(300, 5, pattern="fixed")
    instant = sim.Pusher(median_s=0, sigma=0)
    alone = sim.Machine(cores=2, background=0, create=(("emulator", 0.001),), dispatch=(("emulator", 0.002),))
    quick = sim.simulate(arrivals, emulator, spec, instant, machine=alone)
    # Creates now hold the emulator 1.5 ms each: 45% of its time at 300/s, taken from dispatching.
    contended = replace(alone, create=(("emulator", 0.0015),))
    slow = sim.simulate(arrivals, emulator, spec, instant, machine=contended)
    assert slow.throughput < quick.throughput and slow.percentile(0.99) > quick.percentile(0.99)
    loaded = sim.simulate(arrivals, emulator, spec, instant, machine=replace(alone, background=1.9))
    assert loaded.percentile(0.99) > quick.percentile(0.99)


def test_the_same_seed_gives_the_same_run():
    assert run(100, 5, pattern="bursty").summary() == run(100, 5, pattern="bursty").summary()


def test_bursty_arrivals_keep_their_mean_rate():
    queues = sim.Queues(QUEUE, shards=2)
    result = run(200, 60, queues=queues, pattern="bursty")  # 5x the rate a tenth of the time
    assert result.events == pytest.approx(200 * 60, rel=0.1)
    assert result.percentile(0.99) > 2 * run(200, 60, queues=queues).percentile(0.99)


def test_the_plan_counts_queues_tasks_and_pusher_calls():
    bench = inputs.bench_figures()
    f1 = inputs.INSTANCE_CLASSES["F1"]
    single = model.plan(10_000, model.Mix(), f1, QUEUE, bench)
    assert single.tasks_per_second == 10_000 and single.queues == math.ceil(10_000 / 160)
    batched = model.plan(10_000, model.Mix(events_per_request=10), f1, QUEUE, bench)
    assert batched.tasks_per_second == 1_000 and batched.pusher_calls_per_second == 1_000
    fan_out = model.plan(100, model.Mix(channels_per_event=250), f1, QUEUE, bench)
    assert fan_out.pusher_calls_per_second == 300  # 100 channels a trigger
    assert single.cpu_per_task_s == pytest.approx(4 * bench.loop_task_s)  # F1: a quarter of the bench's core
    too_big = model.plan(100, model.Mix(events_per_request=10, payload_bytes=20_000), f1, QUEUE, bench)
    assert any("Pusher refuses" in warning for warning in too_big.warnings)


def test_the_plan_and_the_simulation_agree_at_a_steady_rate():
    bench = inputs.bench_figures()
    f2 = inputs.INSTANCE_CLASSES["F2"]
    plan = model.plan(1000, model.Mix(), f2, QUEUE, bench)
    spec = model.instances(model.Mix(), f2, bench, min_instances=plan.instances, startup_s=1)
    result = sim.simulate(sim.Arrivals(1000, 20), sim.Queues(QUEUE, shards=plan.queues), spec, PUSHER, seed=3)
    assert result.throughput == pytest.approx(1000, rel=0.05)
    assert result.percentile(0.5) == pytest.approx(plan.latency_s, rel=0.25)


def test_make_capacity_prints_the_plan_and_writes_the_plot(tmp_path, capsys):
    cli.main(["--rate", "300", "--seconds", "5", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| queues (shards) |" in printed and "p99_s" in printed
    assert (tmp_path / "capacity-300.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "capacity-300.json").read_text())["series"]


def test_make_capacity_passes_the_rate():
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "capacity", "RATE=1234"],
        cwd=inputs.ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert dry_run.stdout.strip().splitlines()[-1].endswith("-m capacity --rate 1234")


def test_an_error_burst_on_the_command_line_fails_pusher_calls(tmp_path, capsys):
    cli.main(["--rate", "100", "--seconds", "10", "--error-burst", "2:3:1", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "capacity-100.json").read_text())["simulated"]
    assert summary["delivered"] == summary["events"] and summary["parked"] == 0
    assert summary["p99_s"] > 1  # the events of the burst waited for their retry


def test_the_local_stack_is_measured_and_simulated(soketi):
    """The real path at 50 events/s for 2 s, once: the simulation of it agrees (far below the
    knee, where the measurements hardly spread)."""
    report = local.measure_stack(soketi, (50,), 2, 1, calibration_events=200)
    local.simulate_rows(report)
    calibration, row = report["calibration"], report["rows"][0]
    assert {name for name, _ in calibration["dispatch"]} == {"emulator", "app", "soketi"}
    assert all(cpu > 0 for _, cpu in calibration["create"])
    measured = row["measured"][0]
    assert row["simulated"]["throughput"] == pytest.approx(measured["throughput"], rel=0.25)
    assert "| 50 |" in local.table(report)


def test_the_fitted_dispatch_path_reproduces_the_measured_drain():
    calibration = {
        "events": 400,
        "background_cores": 0.5,
        "create": [["publisher", 0.002], ["app", 0.0015], ["emulator", 0.0005]],
        "dispatch": [["emulator", 0.001], ["app", 0.001], ["soketi", 0.0005]],
        "side": [["publisher", 0.0005]],
        "dispatch_wall_s": 0.005,
        "answer_s": 0.01,
    }
    calibration.update(local.fit_dispatch_path(calibration))
    assert calibration["critical_share"] == 1 and 0 < calibration["dispatch_wait_s"] < 0.0025
    assert local.drain_wall(calibration) == pytest.approx(0.005, rel=0.05)
    assert local.simulate_local(100, 2, calibration).throughput == pytest.approx(100, rel=0.1)
    quick = {**calibration, "dispatch_wall_s": 0.002}  # faster than its CPU: part runs beside the path
    quick.update(local.fit_dispatch_path(quick))
    assert quick["dispatch_wait_s"] == 0 and 0.3 < quick["critical_share"] < 1
    assert local.drain_wall(quick) == pytest.approx(0.002, rel=0.05)
