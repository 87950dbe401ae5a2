"""Parking a batch's bad events apart, where a parked name is kept once.

Parked events live in the parking store (Datastore, or memory in local development), keyed
by name: parking a name twice (an acknowledgement lost on the way back to the queue) keeps
one copy, so two bad events of one task must get names of their own. Pusher is a soketi
that refuses events above 1 KB (413), so events 0 and 20 of a 25-event task make chunks
0-9 and 20-24 fail for good, and then those two events alone.
"""

from __future__ import annotations

import json

import pytest

from pusherlib import Pusher
from pushqueue import wire
from pushqueue.bundled import BundledTaskqueueBackend
from pushqueue.parking import ParkedFilter
from pushqueue.worker import IncomingTask, Worker
from tests.support.soketi import Soketi, unique
from tests.support.subscriber import Subscriber

CHANNEL = unique("ct-chunks-")  # the session's Datastore holds other tests' parked events too


@pytest.fixture(scope="module")
def small_soketi():
    with Soketi(name="soketi-small-parking", max_event_kb=1) as server:
        yield server


def batch_task(name: str, count: int, bad: tuple[int, ...]) -> IncomingTask:
    events = []
    for i in range(count):
        data = {"i": i, "pad": "x" * 3000} if i in bad else {"i": i}
        events.append(wire.encode_event({"channel": CHANNEL, "name": "tick", "data": json.dumps(data)}))
    return IncomingTask("pusher", name, 0, wire.batch_task(events))


def test_bad_events_are_parked_apart_where_names_are_unique(small_soketi, parking_store):
    name = unique("t25-")
    backend = BundledTaskqueueBackend(queue_name="pusher", parking=parking_store)  # parks, adds nothing here
    pusher = Pusher.from_url(small_soketi.url)
    worker = Worker(pusher, backend, max_attempts=20)
    with Subscriber(small_soketi.ws_url) as subscriber:
        subscriber.subscribe(CHANNEL)
        for _ in range(2):  # the second time: the acknowledgement was lost
            assert worker.deliver_batch(batch_task(name, 25, bad=(0, 20))).http_status == 200
        received = [json.loads(subscriber.event("tick", CHANNEL)["data"])["i"] for _ in range(46)]
    pusher.close()
    parked = sorted(parking_store.page(ParkedFilter(channel=CHANNEL), 10).tasks, key=lambda task: task.name)
    assert sorted(received) == sorted([i for i in range(25) if i not in (0, 20)] * 2)
    assert [task.name for task in parked] == [f"pusher__{name}-0", f"pusher__{name}-20"]
    numbers = [[json.loads(event["data"])["i"] for event in json.loads(task.body)] for task in parked]
    assert numbers == [[0], [20]]
