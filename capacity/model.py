"""The capacity model in closed form: for a rate and an event mix, the queues, instances, tasks
and Pusher calls it takes, the expected latency and the cost (docs/capacity.md, "The model")."""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import inputs, sim
from .inputs import BenchFigures, InstanceClass, QueueSettings

QUEUE_HEADROOM = 0.8  # plan each queue at 80% of its rate: room for retries and bursts
TASK_OVERHEAD_BYTES = 100  # a task's own fields around its events
EVENT_OVERHEAD_BYTES = 60  # an event's name and fields around its data


@dataclass(frozen=True)
class Mix:
    """What publishers send: events per POST /push, channels per event, bytes of data per event."""

    events_per_request: int = 1
    channels_per_event: int = 1
    payload_bytes: int = 200


@dataclass(frozen=True)
class Scaling:
    """The automatic_scaling settings and the assumptions the plan uses."""

    max_concurrent_requests: int = inputs.GRANIAN_BACKPRESSURE
    target_cpu: float = inputs.APPENGINE_DEFAULT_TARGET_CPU
    target_throughput: float = inputs.APPENGINE_DEFAULT_TARGET_THROUGHPUT
    pusher_latency_s: float = inputs.PUSHER_LATENCY_S
    create_s: float = inputs.CREATE_TASK_S
    dispatch_delay_s: float = inputs.DISPATCH_DELAY_S


@dataclass(frozen=True)
class Plan:
    rate: float
    instance_class: str
    tasks_per_second: float
    events_per_task: float
    pusher_calls_per_second: float
    task_bytes: int
    queues: int
    in_flight_per_queue: float
    cpu_per_task_s: float
    cpu_per_request_s: float
    instances_for_cpu: float
    instances_for_slots: float
    instances: int
    latency_s: float
    instance_hours_per_million: float
    cost_per_million: float
    warnings: tuple[str, ...]


def events_per_task(mix: Mix) -> float:
    """Coalescing: one request's events go in tasks of at most 10 (the batch call's limit)."""
    per_request = mix.events_per_request
    return per_request / math.ceil(per_request / inputs.PUSHER_BATCH_EVENTS)


def pusher_calls_per_task(mix: Mix) -> float:
    """One trigger per 100 channels of an event; a task of single-channel events is one
    trigger_batch call (up to 10 events)."""
    per_task = events_per_task(mix)
    per_event = math.ceil(mix.channels_per_event / inputs.PUSHER_CHANNELS_PER_TRIGGER)
    if per_task > 1 and mix.channels_per_event == 1:
        return 1.0
    return per_task * per_event


def cpu_per_task(mix: Mix, bench: BenchFigures, instance: InstanceClass) -> float:
    """CPU seconds of one task on ``instance``: the bench's figure (loop path for one event,
    threads for a batch) scaled by the class's clock against the bench machine's core."""
    if events_per_task(mix) == 1:
        measured = bench.loop_task_s * pusher_calls_per_task(mix)
    else:  # each call past the batch's one costs about a one-event task
        measured = bench.batch_task_s + (pusher_calls_per_task(mix) - 1) * bench.loop_task_s
    return measured * inputs.BENCH_CORE_MHZ / instance.cpu_mhz


def cpu_per_request(mix: Mix, bench: BenchFigures, instance: InstanceClass) -> float:
    """CPU seconds of one POST /push on ``instance``: a request on the app's threads with one
    outbound call (a CreateTask) per task, as the bench's thread-path task is with its trigger."""
    tasks = math.ceil(mix.events_per_request / inputs.PUSHER_BATCH_EVENTS)
    return bench.thread_task_s * tasks * inputs.BENCH_CORE_MHZ / instance.cpu_mhz


def plan(
    rate: float,
    mix: Mix,
    instance: InstanceClass,
    queue: QueueSettings,
    bench: BenchFigures,
    scaling: Scaling = Scaling(),
    min_instances: int = 1,
) -> Plan:
    """What ``rate`` events/s of ``mix`` takes on ``instance`` with queues set as ``queue``."""
    warnings = []
    per_task = events_per_task(mix)
    tasks = rate / per_task
    calls = tasks * pusher_calls_per_task(mix)
    task_bytes = int(TASK_OVERHEAD_BYTES + per_task * (mix.payload_bytes + EVENT_OVERHEAD_BYTES))
    if mix.payload_bytes > inputs.PUSHER_MESSAGE_BYTES:
        warnings.append(
            f"{mix.payload_bytes} B of data: Pusher refuses events over {inputs.PUSHER_MESSAGE_BYTES} B"
        )
    if task_bytes > inputs.BUNDLED_MAX_TASK_BYTES:
        warnings.append(
            f"tasks of {task_bytes} B: over the bundled queue's {inputs.BUNDLED_MAX_TASK_BYTES} B"
        )
    queue_rate = min(queue.rate, inputs.TASKS_MAX_DISPATCHES_PER_SECOND)
    queues = max(1, math.ceil(tasks / (QUEUE_HEADROOM * queue_rate)))
    if queues > inputs.QUEUE_YAML_MAX_QUEUES:
        warnings.append(f"{queues} queues: over queue.yaml's initial quota of {inputs.QUEUE_YAML_MAX_QUEUES}")
    cpu = cpu_per_task(mix, bench, instance)
    attempt_s = scaling.dispatch_delay_s + cpu + scaling.pusher_latency_s
    in_flight = tasks / queues * attempt_s
    if in_flight > queue.max_concurrent:
        warnings.append(f"{in_flight:.0f} tasks in flight a queue: over its max_concurrent_requests")
    requests = rate / mix.events_per_request
    request_cpu = cpu_per_request(mix, bench, instance)
    slots = min(scaling.max_concurrent_requests, inputs.GRANIAN_BACKPRESSURE)
    busy = tasks * cpu + requests * request_cpu
    for_cpu = busy / scaling.target_cpu
    in_use = tasks * attempt_s + requests * (scaling.create_s + request_cpu)  # Little's law
    for_slots = in_use / (slots * scaling.target_throughput)
    count = max(min_instances, math.ceil(max(for_cpu, for_slots)))
    utilisation = min(0.95, busy / count)
    waiting = cpu * utilisation / (1 - utilisation)  # M/M/1 wait for the instance's one CPU
    latency = scaling.create_s + attempt_s + waiting
    hours_per_million = count / (rate * 3600) * 1e6
    return Plan(
        rate=rate,
        instance_class=instance.name,
        tasks_per_second=tasks,
        events_per_task=per_task,
        pusher_calls_per_second=calls,
        task_bytes=task_bytes,
        queues=queues,
        in_flight_per_queue=in_flight,
        cpu_per_task_s=cpu,
        cpu_per_request_s=request_cpu,
        instances_for_cpu=for_cpu,
        instances_for_slots=for_slots,
        instances=count,
        latency_s=latency,
        instance_hours_per_million=hours_per_million,
        cost_per_million=hours_per_million * instance.price_per_hour,
        warnings=tuple(warnings),
    )


def instances(
    mix: Mix,
    instance: InstanceClass,
    bench: BenchFigures,
    scaling: Scaling = Scaling(),
    *,
    min_instances: int = 1,
    max_instances: int = 1000,
    startup_s: float = inputs.INSTANCE_STARTUP_S,
    initial: int = 0,
) -> sim.Instances:
    """The simulation's App Engine instances for ``mix`` on ``instance`` under ``scaling``."""
    one_event, batch = Mix(1, mix.channels_per_event), Mix(10, mix.channels_per_event)
    return sim.Instances(
        cpu_per_task_s=cpu_per_task(one_event, bench, instance),
        cpu_per_batch_s=cpu_per_task(batch, bench, instance),
        slots=min(scaling.max_concurrent_requests, inputs.GRANIAN_BACKPRESSURE),
        startup_s=startup_s,
        min_instances=min_instances,
        max_instances=max_instances,
        target_cpu=scaling.target_cpu,
        price_per_hour=instance.price_per_hour,
        cpu_per_request_s=cpu_per_request(Mix(1), bench, instance),
        target_throughput=scaling.target_throughput,
        initial=initial,
    )
