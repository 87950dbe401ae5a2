"""A slow Pusher must not multiply deliveries: the worker under app.yaml's entrypoint, driven
as Cloud Tasks drives it (100 task requests at once, each retried until it answers 2xx),
against soketi behind a proxy that holds every answer 1-3 s (inside PUSHER_TIMEOUT).

A task that waited for one of the pooled connections used to be written with little of its
deadline left: Pusher acted, the worker timed out, answered 500, and the retry sent the
event again. Now a task waits for a connection at most the pool timeout and then fails
unsent; once written, it has its whole timeout.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter

import httpx

from tests.support.appserver import AppServer
from tests.support.counting_subscriber import CountingSubscriber
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.figures import write_figures

CHANNEL, EVENT = "slow-pusher", "counted"
EVENTS = 300
IN_FLIGHT = 100  # queue.yaml's max_concurrent_requests
TIMEOUT = 8  # Pusher answers well inside it (app.yaml has 5): a margin for a loaded 2-core machine
DELAYS = (1.0, 3.0)  # each answer held this long (seconds, uniformly)
RETRY_AFTER = 1.0  # queue.yaml's min_backoff_seconds


def drive(app: AppServer, events: list[str]) -> Counter[int]:
    """Send one task per event from ``IN_FLIGHT`` threads, each retried after a non-2xx
    answer until it gets a 2xx; return how many answers of each status came."""
    todo: queue.Queue[str] = queue.Queue()
    for event in events:
        todo.put(event)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def run(client: httpx.Client) -> None:
        while True:
            try:
                event = todo.get_nowait()
            except queue.Empty:
                return
            for attempt in range(1, 100):
                headers = {
                    "X-AppEngine-QueueName": "pusher",
                    "X-AppEngine-TaskName": event,
                    "X-AppEngine-TaskExecutionCount": str(attempt - 1),
                    "X-AppEngine-TaskRetryCount": str(attempt - 1),
                }
                try:
                    status = client.post(
                        f"/worker/push/{CHANNEL}/{EVENT}", json={"id": event}, headers=headers
                    ).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    statuses[status] += 1
                if 200 <= status < 300:
                    break
                time.sleep(RETRY_AFTER)

    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    with httpx.Client(base_url=app.url, timeout=60, limits=limits) as client:
        threads = [threading.Thread(target=run, args=(client,)) for _ in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
    return statuses


def test_100_tasks_at_once_against_a_slow_pusher_deliver_each_event_once(soketi):
    events = [f"slow-{n}" for n in range(EVENTS)]
    rng = random.Random(19)
    with (
        FaultProxy(soketi.port) as proxy,
        CountingSubscriber(soketi.ws_url, CHANNEL, EVENT) as subscriber,
    ):
        for _ in range(EVENTS * 10):
            proxy.arm(Fault.slow(rng.uniform(*DELAYS)), count=1)
        pusher_url = soketi.url.replace(f":{soketi.port}/", f":{proxy.port}/")
        app = AppServer({"PUSHER_URL": pusher_url, "PUSHER_TIMEOUT": str(TIMEOUT)}, name="slow-pusher-app")
        try:
            app.start()
            started = time.monotonic()
            statuses = drive(app, events)
            took = time.monotonic() - started
        finally:
            app.stop()
        missing = subscriber.wait_for_ids(events, timeout=30)
        time.sleep(1)  # late duplicates
        deliveries = sum(subscriber.counts[event] for event in events)
        figures = {
            "events": EVENTS,
            "in_flight": IN_FLIGHT,
            "deliveries": deliveries,
            "duplicates": subscriber.duplicates(events),
            "forwarded_to_pusher": proxy.counters["forwarded"],
            "answers": dict(sorted(statuses.items())),
            "seconds": round(took, 1),
        }
        write_figures("slow-pusher", figures)
        print(json.dumps(figures))
    assert missing == set()
    assert figures["duplicates"] == 0, figures
    assert set(statuses) <= {200, 503}, figures  # a task not sent asks the queue to slow down
