"""The capacity model run as a discrete-event simulation (SimPy).

Events arrive (Poisson, bursty or on a fixed schedule), are coalesced up to 10 a task per
request, and each task goes to one of the queue's shards. A Cloud Tasks queue dispatches
through its token bucket (``rate``, ``bucket_size``) and ``max_concurrent_requests``, and
retries a failed attempt after ``queue.yaml``'s backoff; the local emulator instead dispatches
one task at a time, every task present at the start of a cycle, then sleeps 0.1 s; on a shared
machine (:class:`Machine`) each process's steps wait for the process and for a core. App
Engine routes each attempt to an instance with a free slot (``max_concurrent_requests``, at
most the entrypoint's backpressure), starts instances (ready after a start-up time) when their
CPU or their slots in use pass the targets, and stops the least loaded one after some time with
more than it wants. An attempt costs CPU on its
instance, then waits for Pusher (log-normal latency; error bursts answer 429/5xx); a task that
failed ``max_attempts`` times is parked.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import simpy

from .inputs import QueueSettings

TICK_S = 1.0  # the autoscaler's period and the time series' resolution
SCALE_DOWN_TICKS = 15  # ticks with more instances than wanted before the least loaded one stops
EMULATOR_POLL_S = 0.1  # the emulator's sleep between dispatch cycles (its _LOOP_SLEEP_TIME)


def percentile(ordered: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``ordered`` (sorted) lies; NaN if it is empty."""
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else math.nan


@dataclass(frozen=True)
class Arrivals:
    """Who publishes: ``rate`` events/s for ``seconds``, ``events_per_request`` per POST /push.
    ``pattern``: ``poisson``, ``fixed`` (one request every 1/rate, as bench/latency.py sends) or
    ``bursty`` (Poisson whose rate is ``burst_factor`` times higher ``burst_share`` of the time,
    lower otherwise so that the mean stays ``rate``). A request waits for one of ``publishers``
    (bench/latency.py's threads) if they are bounded; its latency counts from its sending."""

    rate: float
    seconds: float
    events_per_request: int = 1
    pattern: str = "poisson"
    burst_factor: float = 5.0
    burst_share: float = 0.1
    burst_period_s: float = 10.0
    publishers: int = 0  # at most this many requests at once (0: no bound)


@dataclass(frozen=True)
class Pusher:
    """Pusher's answer: log-normal latency (``median_s``, ``sigma``); during each
    ``(start_s, seconds, share)`` error burst, ``share`` of the calls fail (429 or 5xx)."""

    median_s: float = 0.030
    sigma: float = 0.6
    error_bursts: tuple[tuple[float, float, float], ...] = ()

    def fails(self, now: float, rng: random.Random) -> bool:
        return any(
            start <= now < start + length and rng.random() < share
            for start, length, share in self.error_bursts
        )


@dataclass(frozen=True)
class Instances:
    """App Engine instances: CPU seconds per task (one event; a batch of up to 10) and per
    CreateTask of a POST /push, slots per instance, start-up time, bounds, the targets of CPU
    and of slots in use (target_cpu_utilization, target_throughput_utilization) and the price
    of an instance hour. ``fixed``: exactly ``min_instances``, no autoscaling (the local stack)."""

    cpu_per_task_s: float
    cpu_per_batch_s: float
    slots: int
    startup_s: float
    min_instances: int
    max_instances: int
    target_cpu: float
    price_per_hour: float
    fixed: bool = False
    cpu_per_request_s: float = 0.0
    target_throughput: float = 1.0
    initial: int = 0  # instances ready at the start (0: min_instances)


@dataclass(frozen=True)
class Queues:
    """The push queue: its ``queue.yaml`` settings, how many shards, the CreateTask round trip
    and the dispatch delay. ``emulator``: the local emulator's cycle instead of Cloud Tasks."""

    settings: QueueSettings
    shards: int = 1
    create_s: float = 0.020
    dispatch_delay_s: float = 0.010
    max_attempts: int = 20  # app.yaml's PUSHER_MAX_ATTEMPTS (inputs.max_attempts())
    emulator: bool = False


Steps = tuple[tuple[str, float], ...]  # (process, CPU seconds) in order


@dataclass(frozen=True)
class Machine:
    """One shared computer (the local stack): each process runs one step at a time (its
    interpreter lock or event loop) on one of the ``cores``, which other work keeps
    ``background`` busy in slices of ``slice_s``. ``create``: the steps of one POST /push;
    ``dispatch``: the steps on a dispatch's path, then ``dispatch_wait_s`` of waiting on
    nothing but I/O; ``side``: the steps a dispatch causes beside its path (the subscriber)."""

    cores: int
    background: float
    create: Steps
    dispatch: Steps
    side: Steps = ()
    dispatch_wait_s: float = 0.0
    slice_s: float = 0.004


@dataclass
class Task:
    events: list[float]  # each event's POST /push time
    shard: int
    attempts: int = 0


@dataclass
class Result:
    """What a run gives: per-event latencies, the time series (one point per tick) and totals."""

    latencies: list[float] = field(default_factory=list)
    delivered_at: list[float] = field(default_factory=list)
    first_arrival: float = math.inf
    events: int = 0
    tasks: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    parked_events: int = 0
    instance_seconds: float = 0.0
    price_per_hour: float = 0.0
    series: list[dict[str, float]] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        return percentile(sorted(self.latencies), fraction)

    @property
    def throughput(self) -> float:
        """Events delivered per second, from the first POST to the last delivery."""
        if not self.delivered_at:
            return 0.0
        return len(self.delivered_at) / max(1e-9, max(self.delivered_at) - self.first_arrival)

    @property
    def cost(self) -> float:
        return self.instance_seconds / 3600 * self.price_per_hour

    @property
    def instance_hours_per_million(self) -> float:
        delivered = len(self.delivered_at)
        return self.instance_seconds / 3600 / delivered * 1e6 if delivered else math.nan

    def summary(self) -> dict[str, float]:
        return {
            "events": self.events,
            "delivered": len(self.delivered_at),
            "parked": self.parked_events,
            "throughput": self.throughput,
            "p50_s": self.percentile(0.5),
            "p99_s": self.percentile(0.99),
            "max_backlog": max((point["backlog"] for point in self.series), default=0),
            "max_instances": max((point["instances"] for point in self.series), default=0),
            "instance_hours_per_million": self.instance_hours_per_million,
            "cost": self.cost,
        }


class _Instance:
    def __init__(
        self, env: simpy.Environment, slots: int, ready_at: float, cpu: simpy.Resource | None = None
    ):
        self.cpu = cpu or simpy.Resource(env, 1)
        self.slots = simpy.Resource(env, slots)
        self.started, self.ready_at = env.now, ready_at
        self.busy_s = 0.0  # CPU seconds since the last tick

    def load(self) -> int:
        return self.slots.count + len(self.slots.queue)


class Simulation:
    """One run; :func:`simulate` is the usual way in."""

    def __init__(
        self,
        arrivals: Arrivals,
        queues: Queues,
        instances: Instances,
        pusher: Pusher,
        seed: int = 1,
        machine: Machine | None = None,
    ):
        self.arrivals, self.queues, self.instances, self.pusher = arrivals, queues, instances, pusher
        self.machine = machine
        self.rng = random.Random(seed)
        self.env = simpy.Environment()
        self.result = Result(price_per_hour=instances.price_per_hour)
        self.pool: list[_Instance] = []
        self.retired_seconds = 0.0
        self.waiting = 0  # attempts waiting for an instance's slot
        self.recorded = 0  # latencies already in the time series
        self.surplus_ticks = 0  # consecutive ticks with more ready instances than wanted
        shards = range(queues.shards)
        self.ready = [simpy.Store(self.env) for _ in shards]
        self.delayed = 0  # tasks waiting for their retry backoff
        if not queues.emulator:
            self.slots = [simpy.Resource(self.env, queues.settings.max_concurrent) for _ in shards]
            self.tokens = [float(queues.settings.bucket_size) for _ in shards]
            self.refilled = [0.0 for _ in shards]
        self.cores = simpy.Resource(self.env, machine.cores) if machine else None
        steps = (*machine.create, *machine.dispatch, *machine.side) if machine else ()
        self.processes = {name: simpy.Resource(self.env, 1) for name, _ in steps}
        self.publishers = simpy.Resource(self.env, arrivals.publishers) if arrivals.publishers else None
        for _ in range(instances.initial or instances.min_instances):
            self.pool.append(_Instance(self.env, instances.slots, 0.0, self.cores))

    # Arrivals and enqueueing
    def _gap(self, now: float) -> float:
        a = self.arrivals
        requests = a.rate / a.events_per_request
        if a.pattern == "fixed":
            return 1 / requests
        if a.pattern == "bursty":
            in_burst = (now % a.burst_period_s) < a.burst_share * a.burst_period_s
            high = a.burst_factor
            low = max(0.0, (1 - a.burst_share * high) / (1 - a.burst_share))
            requests *= high if in_burst else max(low, 1e-6)
        return self.rng.expovariate(requests)

    def _publisher(self):
        a = self.arrivals
        while True:
            gap = self._gap(self.env.now)
            if self.env.now + gap >= a.seconds:
                return
            yield self.env.timeout(gap)
            self.result.events += a.events_per_request
            self.env.process(self._request(a.events_per_request))

    def _request(self, count: int):
        """One POST /push, sent as soon as a publisher is free (if their number is bounded)."""
        if self.publishers is None:
            yield self.env.process(self._send(count))
            return
        with self.publishers.request() as publisher:
            yield publisher
            yield self.env.process(self._send(count))

    def _send(self, count: int):
        """The request's events coalesced into tasks of at most 10, each created; answered
        when every task is."""
        now = self.env.now
        self.result.first_arrival = min(self.result.first_arrival, now)
        if self.instances.cpu_per_request_s:
            requests = math.ceil(count / 10)
            yield self.env.process(self._cpu(self._route(), self.instances.cpu_per_request_s * requests))
        creates = []
        while count > 0:
            size = min(count, 10)
            count -= size
            task = Task([now] * size, self.rng.randrange(self.queues.shards))
            self.result.tasks += 1
            creates.append(self.env.process(self._create(task)))
        yield self.env.all_of(creates)

    def _create(self, task: Task):
        yield self.env.timeout(self.queues.create_s)
        if self.machine:
            yield self.env.process(self._steps(self.machine.create))
        yield self.ready[task.shard].put(task)

    # Cloud Tasks
    def _take_token(self, shard: int) -> float:
        """Spend one token of ``shard``'s bucket; how long to wait for it."""
        q = self.queues.settings
        now = self.env.now
        self.tokens[shard] = min(q.bucket_size, self.tokens[shard] + (now - self.refilled[shard]) * q.rate)
        self.refilled[shard] = now
        self.tokens[shard] -= 1
        return max(0.0, -self.tokens[shard] / q.rate)

    def _dispatcher(self, shard: int):
        while True:
            slot = self.slots[shard].request()
            yield slot
            task = yield self.ready[shard].get()
            wait = self._take_token(shard)
            if wait:
                yield self.env.timeout(wait)
            self.env.process(self._dispatch(task, slot, shard))

    def _dispatch(self, task: Task, slot, shard: int):
        yield self.env.timeout(self.queues.dispatch_delay_s)
        ok = yield self.env.process(self._attempt(task))
        self.slots[shard].release(slot)
        self._settle(task, ok, self.queues.settings.backoff(task.attempts))

    # The local emulator
    def _emulator(self, shard: int):
        store = self.ready[shard]
        while True:
            for task in list(store.items):  # the tasks present when the cycle starts
                store.items.remove(task)
                if self.machine:
                    yield self.env.process(self._steps(self.machine.dispatch))
                    yield self.env.timeout(self.machine.dispatch_wait_s)
                    self.env.process(self._steps(self.machine.side))
                ok = yield self.env.process(self._attempt(task))
                self._settle(task, ok, 0.0)  # the emulator retries at its next cycle
            yield self.env.timeout(EMULATOR_POLL_S)

    def _steps(self, steps: Steps):
        """Each step on its process, one after the other."""
        for name, seconds in steps:
            with self.processes[name].request() as turn:
                yield turn
                yield self.env.process(self._machine_cpu(seconds))

    def _machine_cpu(self, seconds: float):
        if self.cores is None or seconds <= 0:
            yield self.env.timeout(seconds)
            return
        with self.cores.request() as core:
            yield core
            yield self.env.timeout(seconds)

    def _background(self, share: float):
        """Other work holding one core ``share`` of the time, a slice at a time."""
        slice_s = self.machine.slice_s
        while True:
            yield self.env.timeout(self.rng.expovariate(share / (slice_s * (1 - share))) if share < 1 else 0)
            yield self.env.process(self._machine_cpu(slice_s))

    def _settle(self, task: Task, ok: bool, backoff: float) -> None:
        if ok:
            for arrived in task.events:
                self.result.latencies.append(self.env.now - arrived)
                self.result.delivered_at.append(self.env.now)
        elif task.attempts >= self.queues.max_attempts:
            self.result.parked_events += len(task.events)
        else:
            self.env.process(self._retry(task, backoff))

    def _retry(self, task: Task, backoff: float):
        self.delayed += 1
        yield self.env.timeout(backoff)
        self.delayed -= 1
        yield self.ready[task.shard].put(task)

    # App Engine
    def _attempt(self, task: Task):
        """One attempt on an instance: CPU, the Pusher call, CPU; whether it succeeded."""
        task.attempts += 1
        self.result.attempts += 1
        instance = self._route()
        self.waiting += 1
        with instance.slots.request() as slot:
            yield slot
            if instance.ready_at > self.env.now:
                yield self.env.timeout(instance.ready_at - self.env.now)
            self.waiting -= 1
            cost = self.instances.cpu_per_task_s if len(task.events) == 1 else self.instances.cpu_per_batch_s
            yield self.env.process(self._cpu(instance, cost / 2))
            yield self.env.timeout(self.pusher.median_s * math.exp(self.rng.gauss(0, self.pusher.sigma)))
            failed = self.pusher.fails(self.env.now, self.rng)
            yield self.env.process(self._cpu(instance, cost / 2))
        self.result.failed_attempts += failed
        return not failed

    def _cpu(self, instance: _Instance, seconds: float):
        if seconds <= 0:
            return
        with instance.cpu.request() as turn:
            yield turn
            instance.busy_s += seconds
            yield self.env.timeout(seconds)

    def _route(self) -> _Instance:
        """The ready instance with the fewest attempts (App Engine's pending queue: the least
        loaded one when every slot is taken)."""
        if not self.pool:  # scaled to zero: a cold start
            self.pool.append(
                _Instance(self.env, self.instances.slots, self.env.now + self.instances.startup_s)
            )
        ready = [instance for instance in self.pool if instance.ready_at <= self.env.now] or self.pool
        return min(ready, key=_Instance.load)

    def _autoscaler(self):
        spec = self.instances
        while True:
            yield self.env.timeout(TICK_S)
            ready = [instance for instance in self.pool if instance.ready_at <= self.env.now]
            busy = sum(instance.busy_s for instance in ready)
            for instance in self.pool:
                instance.busy_s = 0.0
            in_use = sum(instance.load() for instance in ready)
            wanted = max(
                spec.min_instances,
                math.ceil(busy / TICK_S / spec.target_cpu),
                math.ceil(in_use / (spec.slots * spec.target_throughput)),
            )
            if not spec.fixed and wanted > len(self.pool):
                for _ in range(min(wanted, spec.max_instances) - len(self.pool)):
                    self.pool.append(
                        _Instance(self.env, spec.slots, self.env.now + spec.startup_s, self.cores)
                    )
            surplus = not spec.fixed and len(ready) > wanted
            self.surplus_ticks = self.surplus_ticks + 1 if surplus else 0
            if self.surplus_ticks >= SCALE_DOWN_TICKS:  # no new work for it; its own finishes
                stop = min(ready, key=_Instance.load)
                self.pool.remove(stop)
                self.retired_seconds += self.env.now - stop.started
                self.surplus_ticks = 0
            self._record(ready)

    def _record(self, ready: list[_Instance]) -> None:
        recent = sorted(self.result.latencies[self.recorded :])
        self.recorded = len(self.result.latencies)
        self.result.series.append(
            {
                "t": self.env.now,
                "delivered": len(recent) / TICK_S,
                "p50_s": percentile(recent, 0.5),
                "p99_s": percentile(recent, 0.99),
                "backlog": sum(len(store.items) for store in self.ready) + self.delayed + self.waiting,
                "instances": len(self.pool),
                "ready": len(ready),
            }
        )

    def run(self, drain_s: float = 600.0) -> Result:
        """Publish for ``arrivals.seconds``, then let the backlog drain (at most ``drain_s``)."""
        self.env.process(self._publisher())
        for shard in range(self.queues.shards):
            self.env.process(self._emulator(shard) if self.queues.emulator else self._dispatcher(shard))
        self.env.process(self._autoscaler())
        if self.machine and self.machine.background > 0:
            jobs = math.ceil(self.machine.background)
            for _ in range(jobs):
                self.env.process(self._background(min(0.95, self.machine.background / jobs)))
        end = self.arrivals.seconds + drain_s
        step = self.arrivals.seconds
        while self.env.now < end:
            self.env.run(until=min(end, self.env.now + step))
            settled = len(self.result.delivered_at) + self.result.parked_events
            if self.env.now >= self.arrivals.seconds and settled >= self.result.events:
                break
            step = 5.0
        self.result.instance_seconds = self.retired_seconds + sum(self.env.now - i.started for i in self.pool)
        return self.result


def simulate(
    arrivals: Arrivals,
    queues: Queues,
    instances: Instances,
    pusher: Pusher,
    seed: int = 1,
    machine: Machine | None = None,
) -> Result:
    """Run the simulation once (deterministic for a given ``seed``)."""
    return Simulation(arrivals, queues, instances, pusher, seed, machine).run()
