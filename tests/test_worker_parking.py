"""Parking a batch's bad chunks on Cloud Tasks, where a task name can be used only once.

The emulator accepts a second task of one name; Cloud Tasks answers ``AlreadyExists``.
:class:`UniqueNames` wraps the emulator's client to answer as Cloud Tasks does (everything
else is the emulator's). Pusher is a soketi that refuses events above 1 KB (413), so
events 0 and 20 of a 25-event task make chunks 0-9 and 20-24 fail for good.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.api_core import exceptions

from pusherlib import Pusher
from pushqueue import wire
from pushqueue.worker import IncomingTask, Worker
from tests.support.emulator import running_emulator
from tests.support.processes import free_port
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber

pytestmark = pytest.mark.emulator


class UniqueNames:
    """A Cloud Tasks client that refuses a task name used before, as Cloud Tasks does."""

    def __init__(self, client: Any):
        self.client, self.names, self.refused = client, set(), 0

    def create_task(self, *, parent: str, task: dict[str, Any], **options: Any) -> Any:
        name = task.get("name")
        if name in self.names:
            self.refused += 1
            raise exceptions.AlreadyExists(f"Requested entity already exists: {name}")
        if name:
            self.names.add(name)
        return self.client.create_task(parent=parent, task=task, **options)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.client, attribute)


@pytest.fixture(scope="module")
def small_soketi():
    with Soketi(name="soketi-small-parking", max_event_kb=1) as server:
        yield server


def batch_task(count: int, bad: tuple[int, ...]) -> IncomingTask:
    events = []
    for i in range(count):
        data = {"i": i, "pad": "x" * 3000} if i in bad else {"i": i}
        events.append(wire.encode_event({"channel": "ct-chunks", "name": "tick", "data": json.dumps(data)}))
    return IncomingTask("pusher", "t25", 0, wire.batch_task(events))


def test_bad_chunks_are_parked_apart_where_names_are_unique(small_soketi):
    with running_emulator(free_port(), name="tasks-emulator-parking") as emulator:
        backend = emulator.backend()
        backend._client = UniqueNames(backend.client)
        pusher = Pusher.from_url(small_soketi.url)
        queues = {"queue_name": "pusher", "parked_queue_name": "pusher-parked"}
        worker = Worker(pusher, backend, **queues, max_attempts=20)
        with Subscriber(small_soketi.ws_url) as subscriber:
            subscriber.subscribe("ct-chunks")
            for _ in range(2):  # the second time: the acknowledgement was lost
                assert worker.deliver_batch(batch_task(25, bad=(0, 20))).http_status == 200
            received = [json.loads(subscriber.event("tick", "ct-chunks")["data"])["i"] for _ in range(20)]
        parked = sorted(backend.list_parked(10), key=lambda task: task.name)
        pusher.close()
    assert sorted(received) == sorted(list(range(10, 20)) * 2)
    assert [task.name for task in parked] == ["t25-0", "t25-20"]
    numbers = [[json.loads(event["data"])["i"] for event in json.loads(task.body)] for task in parked]
    assert numbers == [list(range(10)), list(range(20, 25))]
    assert backend._client.refused == 2  # the second parking of each chunk: one copy kept
