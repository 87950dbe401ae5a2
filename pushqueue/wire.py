"""How Pusher events travel in tasks: the worker URLs and bodies.

One event on one channel travels as the seed did: ``POST /worker/push/<channel>/<event>``
with the event data as the body, exactly the text Pusher will receive (JSON for anything
but a str), and the socket id to exclude, if any, in ``X-Pusher-Socket-Id``. The worker
also takes form fields there (``taskqueue.add(params=...)``) and sends them as a dict.

Several events (from one request's coalescing, an event for several channels, or an event
name the URL cannot carry) travel as ``POST /worker/batch`` with a JSON list of
``{"channel", "name", "data", "socket_id"?}``, ``data`` being the text to send; the worker
sends them with one ``/batch_events`` call per 10.
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
    """The events of a batch body; ``ValueError`` when it is not a non-empty JSON list
    (strict JSON, nested at most :data:`pusherlib.strict_json.MAX_DEPTH` deep).

    The events themselves are checked by pusherlib when they are sent.
    """
    events = strict_json.loads(body)
    if not isinstance(events, list) or not events:
        raise ValueError("a batch task's body must be a non-empty JSON list of events")
    return events
