"""Request-scoped coalescing: how many queue tasks the events of one request become.

Events are enqueued inside one collecting scope (what ``CoalescingMiddleware`` opens for
every request of the app) against the Cloud Tasks emulator, its queue paused so that the
tasks created can be counted; the same events enqueued outside a scope give the baseline.
"""

from __future__ import annotations

import time
from typing import Any

from handlers.wiring import event_queue_for
from pushqueue.coalesce import collecting
from pushqueue.events import EventQueue
from settings import Settings
from tests.support.emulator import TasksEmulator, running_emulator
from tests.support.processes import free_port

from .clients import CHANNEL, DATA, EVENT
from .context import Context
from .report import Row

EVENTS_PER_REQUEST = (1, 5, 10, 25, 100)


def enqueue(queue: EventQueue, emulator: TasksEmulator, events: int, coalesced: bool) -> dict[str, float]:
    """Enqueue ``events`` events (in one collecting scope or one by one); count the tasks."""
    before = len(emulator.tasks(queue.queue_name))
    start = time.perf_counter()
    if coalesced:
        with collecting(queue):
            for n in range(events):
                queue.enqueue_event(CHANNEL, EVENT, {**DATA, "sequence": n})
    else:
        for n in range(events):
            queue.enqueue_event(CHANNEL, EVENT, {**DATA, "sequence": n})
    elapsed = time.perf_counter() - start
    tasks = len(emulator.tasks(queue.queue_name)) - before
    return {"tasks": tasks, "tasks_per_event": tasks / events, "us_per_event": elapsed / events * 1e6}


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    found: dict[str, Any] = {}
    with running_emulator(free_port(), name="bench-tasks-emulator") as emulator:
        # Local: nothing is parked here, so no Datastore is needed (the local switch keeps parking in memory).
        local = {"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1"}
        settings = Settings.from_env({**emulator.app_env(), **local, "PUSHER_URL": ctx.server.url})
        queue = event_queue_for(settings)
        emulator.pause(queue.queue_name)
        enqueue(queue, emulator, 5, coalesced=True)  # warm up the gRPC channel
        for events in EVENTS_PER_REQUEST:
            found[str(events)] = {
                "coalesced": enqueue(queue, emulator, events, coalesced=True),
                "one_by_one": enqueue(queue, emulator, events, coalesced=False),
            }
    rows = [
        Row(
            f"queue tasks per event, {events} events enqueued in one request",
            "tasks/event",
            measured["coalesced"]["tasks_per_event"],
            measured["one_by_one"]["tasks_per_event"],
            goal="one task per 10 events" if events == 10 else "",
            met=measured["coalesced"]["tasks"] == 1 if events == 10 else None,
            baseline="the same events outside a request scope",
        )
        for events, measured in ((int(k), v) for k, v in found.items())
    ]
    ten = found["10"]
    rows.append(
        Row(
            "enqueue cost per event, 10 events in one request (emulator round trips included)",
            "µs",
            ten["coalesced"]["us_per_event"],
            ten["one_by_one"]["us_per_event"],
            baseline="the same events outside a request scope",
        )
    )
    return rows, {"events_per_request": found}
