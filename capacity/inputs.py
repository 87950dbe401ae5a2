"""The model's inputs: documented platform limits (each with the page that states it), the
figures of the saved ``make bench`` run, the assumptions no document fixes, and ``queue.yaml``.

Nothing here is measured at run time: docs/capacity.md lists the same values with their sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from google.appengine.api import appinfo, queueinfo

ROOT = Path(__file__).resolve().parents[1]
QUEUE_YAML = ROOT / "queue.yaml"
APP_YAML = ROOT / "app.yaml"
BENCH_RESULTS = ROOT / "bench" / "results" / "results.json"

# Cloud Tasks (https://cloud.google.com/tasks/docs/quotas and the RateLimits reference,
# https://cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues#ratelimits).
TASKS_MAX_DISPATCHES_PER_SECOND = 500  # per queue ("rate" in queue.yaml)
TASKS_MAX_BURST = 500  # max_burst_size ("bucket_size")
TASKS_MAX_CONCURRENT = 5000  # max_concurrent_dispatches ("max_concurrent_requests")
TASKS_MAX_TASK_BYTES = 1024 * 1024  # a Cloud Tasks task
BUNDLED_MAX_TASK_BYTES = 100 * 1024  # a push task of the bundled taskqueue API
QUEUE_YAML_MAX_QUEUES = 100  # queues made from queue.yaml (the initial quota of the older Task Queues)

# Pusher Channels (https://pusher.com/docs/channels/server_api/http-api/ and the support pages
# "What is the message size limit" and the Batch Events API announcement).
PUSHER_BATCH_EVENTS = 10  # events per trigger_batch call on the multi-tenant clusters
PUSHER_CHANNELS_PER_TRIGGER = 100
PUSHER_MESSAGE_BYTES = 10 * 1024  # the data of one event

# App Engine standard (https://cloud.google.com/appengine/docs/standard/python3/config/appref,
# "Scaling elements"): max_concurrent_requests defaults to 10 (at most 1000);
# target_cpu_utilization and target_throughput_utilization default to 0.6 (a new instance
# when the requests in flight pass max_concurrent_requests times the latter).
APPENGINE_DEFAULT_CONCURRENT = 10
APPENGINE_MAX_CONCURRENT = 1000
APPENGINE_DEFAULT_TARGET_CPU = 0.6
APPENGINE_DEFAULT_TARGET_THROUGHPUT = 0.6


@dataclass(frozen=True)
class InstanceClass:
    """An App Engine standard instance class (https://cloud.google.com/appengine/docs/standard,
    "Instance classes"); ``price_per_hour`` is an input (us-central1 list price of
    https://cloud.google.com/appengine/pricing on the day this was written: check yours)."""

    name: str
    cpu_mhz: int
    memory_mb: int
    price_per_hour: float


INSTANCE_CLASSES = {
    "F1": InstanceClass("F1", 600, 384, 0.05),
    "F2": InstanceClass("F2", 1200, 768, 0.10),
    "F4": InstanceClass("F4", 2400, 1536, 0.20),
}

# Assumptions no document fixes (each can be overridden on the command line).
BENCH_CORE_MHZ = 2400  # one core of the bench machine counted as an F4's CPU
INSTANCE_STARTUP_S = 5.0  # App Engine start of a new python311 instance until it serves
CREATE_TASK_S = 0.020  # CreateTask round trip from the instance (POST /push's share)
DISPATCH_DELAY_S = 0.010  # Cloud Tasks: from a token and a free slot to the request's arrival
PUSHER_LATENCY_S = 0.030  # median trigger round trip to Pusher from the same region
PUSHER_LATENCY_SIGMA = 0.6  # log-normal shape: p99 is about 4x the median
GRANIAN_BACKPRESSURE = 64  # app.yaml's entrypoint: tasks in flight on one instance's loop
APP_THREADS = 8  # app.yaml: threads for the WSGI requests (batch tasks)


@dataclass(frozen=True)
class BenchFigures:
    """What ``make bench`` measured on one process of the bench machine (seconds of wall time
    per task with the 2 cores shared with soketi and the load generator: an upper bound of the
    CPU a task costs)."""

    loop_task_s: float  # one-event /worker/push task, event loop path, 8 in flight
    thread_task_s: float  # one-event task on WSGI threads (granian WSGI, 1 worker x 8 threads)
    batch_task_s: float  # /worker/batch of 10 events (threads path), 8 in flight
    one_at_a_time_s: float  # one /worker/push task at a time (request, trigger, answer)
    rss_mb: float  # the worker's resident memory after the run


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def bench_figures(path: Path = BENCH_RESULTS) -> BenchFigures:
    """The figures of the saved bench run (bench/results/results.json)."""
    details = json.loads(path.read_text())["details"]["worker"]
    per_second = details["per_second"]
    batch_events = _median(per_second["entrypoint_batch_events"])
    return BenchFigures(
        loop_task_s=1 / _median(per_second["entrypoint"]),
        thread_task_s=1 / _median(per_second["granian WSGI, 1 worker x 8 threads"]),
        batch_task_s=PUSHER_BATCH_EVENTS / batch_events,
        one_at_a_time_s=1 / _median(per_second["entrypoint_1_connection"]),
        rss_mb=details["memory"]["end_kib"] / 1024,
    )


@dataclass(frozen=True)
class QueueSettings:
    """One queue of ``queue.yaml``: its dispatch rate, bucket, concurrency and retry backoff."""

    name: str
    rate: float
    bucket_size: int
    max_concurrent: int
    min_backoff_s: float
    max_backoff_s: float
    max_doublings: int

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1 for the first): ``min_backoff_s``, doubled
        ``max_doublings`` times, then grown by that last step, never above ``max_backoff_s``
        (Cloud Tasks' RetryConfig: 10 s, 3 doublings, 300 s gives 10, 20, 40, 80, 160, 240, 300)."""
        if retry <= self.max_doublings + 1:
            delay = self.min_backoff_s * 2 ** (retry - 1)
        else:
            delay = self.min_backoff_s * 2**self.max_doublings * (retry - self.max_doublings)
        return min(delay, self.max_backoff_s)


def queue_settings(path: Path = QUEUE_YAML) -> dict[str, QueueSettings]:
    """Every queue of ``queue.yaml``, parsed as Google's tools parse it."""
    with path.open() as stream:
        entries = queueinfo.LoadSingleQueue(stream).queue
    queues = {}
    for entry in entries:
        retry = entry.retry_parameters
        queues[entry.name] = QueueSettings(
            name=entry.name,
            rate=queueinfo.ParseRate(entry.rate),
            bucket_size=int(entry.bucket_size or 5),
            max_concurrent=int(entry.max_concurrent_requests or TASKS_MAX_CONCURRENT),
            min_backoff_s=float(retry.min_backoff_seconds if retry else 0.1),
            max_backoff_s=float(retry.max_backoff_seconds if retry else 3600),
            max_doublings=int(retry.max_doublings if retry else 16),
        )
    return queues


def push_queue(name: str = "pusher", path: Path = QUEUE_YAML) -> QueueSettings:
    """The push queue's settings: ``name`` itself, or its first shard (``name-0``)."""
    queues = queue_settings(path)
    return queues.get(name) or queues[f"{name}-0"]


def max_attempts(path: Path = APP_YAML) -> int:
    """``PUSHER_MAX_ATTEMPTS`` of ``app.yaml`` (the attempts after which the worker parks a task)."""
    with path.open() as stream:
        return int(appinfo.LoadSingleAppInfo(stream).env_variables["PUSHER_MAX_ATTEMPTS"])
