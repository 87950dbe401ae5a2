"""Parked events at Datastore's limits, on the Datastore emulator: any task the worker can
receive (a body up to its 1 MiB, incompressible; a long reason; 100 channels with long
names) is parked, listed and replayed byte for byte; and Datastore's errors come out as the
kind they are (refused for good, or unavailable for now)."""

from __future__ import annotations

import json
import os
import random

import pytest
from google.cloud import ndb

from handlers.worker import MAX_TASK_BODY_BYTES
from pushqueue.datastore import translated_errors
from pushqueue.parking import DatastoreParking, ParkedFilter, _models
from pushqueue.tasks import PARKED_REASON, QueueRefused, TaskRequest, parked_request
from pushqueue.wire import JSON_HEADERS, WORKER_BATCH_PATH
from tests.support.figures import write_figures
from tests.support.soketi import unique

MIB = 1024 * 1024
LONG_REASON = "Pusher 413: " + "\U0001f600" * 6000  # 4 bytes each: 500 characters are 2,000 bytes


@pytest.fixture
def store(datastore):
    return DatastoreParking(datastore.clients())


def parked(original: TaskRequest, name: str, retry_count: int = 0) -> TaskRequest:
    """``original`` as parked with :data:`LONG_REASON` (a header value kept as it came)."""
    task = parked_request(original, reason="", original_task=name, retry_count=retry_count)
    headers = tuple((k, LONG_REASON if k == PARKED_REASON else v) for k, v in task.headers)
    return TaskRequest(task.url, task.body, headers)


def replayed(store: DatastoreParking, name: str) -> TaskRequest:
    """Replay ``name``; the request the queue was given."""
    added: list[TaskRequest] = []
    store.replay(name, lambda request: added.append(request) or request.name or "")
    [request] = added
    return request


def part_count(datastore, name: str) -> int:
    with datastore.client().context():
        parent = ndb.Key(_models()[0], name)
        return len(_models()[1].query(ancestor=parent).fetch(keys_only=True))


def test_a_largest_incompressible_body_with_a_long_reason_is_parked_and_replayed_byte_for_byte(
    store, datastore
):
    name, channel = unique("big"), unique("ch-")
    body = os.urandom(MAX_TASK_BODY_BYTES)
    original = TaskRequest(f"/worker/push/{channel}/ev", body, (*JSON_HEADERS, ("X-Pusher-Socket-Id", "1.2")))
    task = parked(original, name, retry_count=2)
    store.park(task, name)
    store.park(task, name)  # again (an acknowledgement lost): one copy
    [listed] = store.page(ParkedFilter(channel=channel), 10).tasks
    parts = part_count(datastore, name)
    figures = {"body_bytes": len(body), "reason_chars": len(LONG_REASON), "parts": parts}
    write_figures("parking_largest_task", figures)
    assert listed.body == body and listed.reason == LONG_REASON and listed.retry_count == 2
    assert parts == 2
    request = replayed(store, name)
    assert (request.url, request.body, request.name) == (original.url, body, f"{name}-replay")
    assert request.header("X-Pusher-Socket-Id") == "1.2" and request.header(PARKED_REASON) is None
    assert store.page(ParkedFilter(channel=channel), 10).tasks == []
    assert part_count(datastore, name) == 0  # its parts went with it


def test_a_batch_of_100_long_channel_names_and_a_1_mib_body_is_parked_and_listed_by_each(store):
    name, prefix = unique("wide"), unique("ch-")
    channels = [f"{prefix}-{index:03}-{'x' * 460}" for index in range(100)]
    noise = random.Random(19)
    filler = "".join(chr(noise.randrange(0x4E00, 0x9FFF)) for _ in range(3100))  # CJK: 3 bytes each
    events = [{"channel": c, "name": f"ev-{'y' * 480}-{i}", "data": filler} for i, c in enumerate(channels)]
    body = json.dumps(events, ensure_ascii=False).encode()
    assert len(body) <= MAX_TASK_BODY_BYTES
    original = TaskRequest(WORKER_BATCH_PATH, body, JSON_HEADERS)
    store.park(parked(original, name), name)
    for channel in (channels[0], channels[99]):
        [listed] = store.page(ParkedFilter(channel=channel), 10).tasks
        assert listed.name == name and len(listed.channels) == 100 and listed.body == body
    assert replayed(store, name).body == body


def test_an_entity_datastore_refuses_is_refused_for_good(ndb_context):
    class TooLarge(ndb.Model):
        data = ndb.BlobProperty()

    with pytest.raises(QueueRefused, match="InvalidArgument"), translated_errors():
        TooLarge(data=os.urandom(1_100_000)).put()


def test_a_page_of_large_bodies_ends_early_and_the_next_goes_on(datastore):
    store = DatastoreParking(datastore.clients(), max_page_bytes=3 * MIB // 2)
    channel = unique("ch-")
    bodies = {unique(f"large{index}"): os.urandom(MIB) for index in range(3)}
    for name, body in bodies.items():
        store.park(TaskRequest(f"/worker/push/{channel}/ev", body), name)
    first = store.page(ParkedFilter(channel=channel), 10)
    second = store.page(ParkedFilter(channel=channel), 10, first.cursor)
    rest = store.page(ParkedFilter(channel=channel), 10, second.cursor).tasks if second.cursor else []
    assert (len(first.tasks), len(second.tasks), rest) == (2, 1, [])
    assert {task.name: task.body for task in first.tasks + second.tasks} == bodies
