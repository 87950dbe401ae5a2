"""How Pusher events travel in tasks: one event as ``POST /worker/push/<channel>/<event>``
with its data as the body, several as ``POST /worker/batch`` with a JSON list (see
docs/worker.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from pusherlib import strict_json

from .tasks import TaskRequest

WORKER_PATH_PREFIX = "/worker/"  # every task URL under it is the worker's (POST only)
WORKER_PUSH_PATH = "/worker/push"
WORKER_BATCH_PATH = "/worker/batch"
SOCKET_ID_HEADER = "X-Pusher-Socket-Id"
JSON_HEADERS = (("Content-Type", "application/json"),)

Event = dict[str, Any]


def encode_event(event: Event) -> bytes:
    """One event as it appears in a batch body."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_task(event: Event, *, name: str | None = None, queue_name: str | None = None) -> TaskRequest:
    """The single-event task for ``event`` (whose data is already text)."""
    url = f"{WORKER_PUSH_PATH}/{quote(event['channel'], safe='')}/{quote(event['name'], safe='')}"
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS
    if event.get("socket_id"):
        headers += ((SOCKET_ID_HEADER, event["socket_id"]),)
    return TaskRequest(url, event["data"].encode("utf-8"), headers, queue_name=queue_name, name=name)


def batch_task(
    encoded_events: Sequence[bytes], *, name: str | None = None, queue_name: str | None = None
) -> TaskRequest:
    """The batch task for events already encoded by :func:`encode_event`."""
    body = b"[" + b",".join(encoded_events) + b"]"
    return TaskRequest(WORKER_BATCH_PATH, body, JSON_HEADERS, queue_name=queue_name, name=name)


def fits_event_url(event: Event) -> bool:
    """True when the event's name can be a path segment (a ``/`` cannot: it would not route)."""
    return "/" not in event["name"]


def parse_batch(body: bytes) -> list[Any]:
    """The events of a batch body (checked by pusherlib when sent); ``ValueError`` unless it
    is a non-empty strict-JSON list."""
    events = strict_json.loads(body)
    if not isinstance(events, list) or not events:
        raise ValueError("a batch task's body must be a non-empty JSON list of events")
    return events
