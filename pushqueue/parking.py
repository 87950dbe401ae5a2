"""Parked events: tasks the worker can never deliver, kept in Datastore until an operator
replays or deletes them (:class:`DatastoreParking`; :class:`MemoryParking` for local
development only). How parking and replay behave: docs/operations.md, 'Parked events'."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import unquote

from . import logs, wire
from .datastore import CALL_OPTIONS, NdbClients, translated_errors
from .tasks import (
    PARKED_REASON,
    TASK_NAME,
    ParkedTask,
    ParkedTaskNotFound,
    QueueRefused,
    QueueUnavailable,
    TaskAlreadyExistsError,
    TaskRequest,
)

MAX_NAMES = 100  # channels / event names indexed per parked event
MAX_INDEXED_CHARS = 500  # a reason, channel or event name is indexed up to this length
MAX_INDEXED_BYTES = 1500  # Datastore's limit for an indexed string
MAX_MEMORY_PARKED = 10_000
MAX_PAGE = 1000
MAX_PAGE_BYTES = 16 * 1024 * 1024  # bodies one listed page holds (1000 bodies of 1 MiB would not fit an F1)
# A ParkedEvent stays under Datastore's 1 MiB: URL and headers (the server reads at most
# ~408 KB of them) + a body of up to 128 KiB + 2 x 100 indexed names of 1500 bytes + a reason.
MAX_URL_AND_HEADERS_BYTES = 512 * 1024
INLINE_BODY_BYTES = 128 * 1024  # a larger body is kept compressed in parts
PART_BYTES = 900_000
MAX_PARKS_AT_ONCE = 2  # parks waiting on Datastore at once (the app runs 8 threads)
PARK_SLOT_WAIT = 0.5  # seconds a park waits for one, then the queue retries it

AddTask = Callable[[TaskRequest], str]


class BadCursor(ValueError):
    """A paging cursor this store did not give (a caller's mistake: 400)."""


@dataclass(frozen=True, slots=True)
class ParkedFilter:
    """Which parked events to list, delete or replay: ``None`` matches anything."""

    channel: str | None = None
    event: str | None = None
    reason: str | None = None

    def matches(self, parked: ParkedTask) -> bool:
        """Whether ``parked`` passes every given condition."""
        return (
            (self.channel is None or self.channel in parked.channels)
            and (self.event is None or self.event in parked.events)
            and (self.reason is None or self.reason == _index_text(parked.reason))
        )


@dataclass(frozen=True, slots=True)
class ParkedPage:
    """One page of parked events and the cursor of the next (``None``: the last page)."""

    tasks: list[ParkedTask]
    cursor: str | None


class ParkingStore(Protocol):
    """Where parked events wait."""

    def park(self, request: TaskRequest, name: str) -> None:
        """Keep ``request`` (with its parking headers) as parked event ``name``."""
        ...

    def page(self, where: ParkedFilter, limit: int, cursor: str | None = None) -> ParkedPage:
        """Up to ``limit`` parked events matching ``where``, after ``cursor``."""
        ...

    def delete(self, name: str) -> None:
        """Forget parked event ``name``; :class:`ParkedTaskNotFound` when there is none."""
        ...

    def replay(self, name: str, add: AddTask) -> str:
        """Queue parked event ``name`` again with ``add``, then forget it; the new task's
        name. :class:`ParkedTaskNotFound` when there is none."""
        ...


def names_carried(request: TaskRequest) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The channels and event names a worker task carries (read from its URL or batch
    body; nothing for a task the worker cannot read)."""
    pairs: list[tuple[Any, Any]] = []
    path = request.url.split("?", 1)[0]
    if path.startswith(wire.WORKER_PUSH_PATH + "/"):
        channel, _, event = path[len(wire.WORKER_PUSH_PATH) + 1 :].partition("/")
        pairs.append((unquote(channel), unquote(event)))
    elif path == wire.WORKER_BATCH_PATH:
        try:
            events = wire.parse_batch(request.body)
        except ValueError:
            events = []
        pairs.extend((e.get("channel"), e.get("name")) for e in events if isinstance(e, dict))
    return _distinct(c for c, _ in pairs), _distinct(e for _, e in pairs)


def _distinct(values: Iterable[Any]) -> tuple[str, ...]:
    kept = dict.fromkeys(v for v in values if isinstance(v, str) and v and _indexable(v))
    return tuple(kept)[:MAX_NAMES]


def _indexable(text: str) -> bool:
    """Short enough for an indexed Datastore string (1500 bytes, and a sane length)."""
    return len(text) <= MAX_INDEXED_CHARS and len(text.encode("utf-8", "surrogatepass")) <= MAX_INDEXED_BYTES


def replay_task_name(name: str) -> str:
    """The name of the task replaying parked event ``name``."""
    candidate = f"{name}-replay"
    if TASK_NAME.fullmatch(candidate):
        return candidate
    return f"replay-{hashlib.sha256(name.encode()).hexdigest()}"  # too long once suffixed


def parked_task(name: str, request: TaskRequest, parked_at: float | None = None) -> ParkedTask:
    """The :class:`ParkedTask` for a parked request, with the names it carries."""
    channels, events = names_carried(request)
    parked = ParkedTask.from_request(name, request)
    return replace(parked, channels=channels, events=events, parked_at=parked_at)


def _queue_replay(request: TaskRequest, name: str, add: AddTask) -> str:
    """Add ``request`` as the replay of ``name`` (a duplicate counts as done)."""
    task_name = replay_task_name(name)
    with contextlib.suppress(TaskAlreadyExistsError):  # queued by a replay stopped before deleting
        add(replace(request, name=task_name, queue_name=None))
    logs.log(logging.INFO, "parked event replayed", task=name, replayed_as=task_name)
    return task_name


# -- Datastore ----------------------------------------------------------------------------


def _models() -> tuple[Any, Any]:
    """The ``ParkedEvent`` model and its ``ParkedEventPart`` children (google-cloud-ndb
    imported on first use)."""
    global _MODELS
    if _MODELS is None:
        from google.cloud import ndb

        class ParkedEvent(ndb.Model):
            """One parked task; its key's id is the task's name. A body larger than
            :data:`INLINE_BODY_BYTES` is in ``body_parts`` children instead of ``body``."""

            url = ndb.TextProperty()
            method = ndb.TextProperty()
            headers = ndb.JsonProperty()
            body = ndb.BlobProperty(compressed=True)
            body_parts = ndb.IntegerProperty(indexed=False)
            reason = ndb.StringProperty()
            channels = ndb.StringProperty(repeated=True)
            events = ndb.StringProperty(repeated=True)
            parked_at = ndb.FloatProperty(indexed=False)

        class ParkedEventPart(ndb.Model):
            """Part ``key.id()`` (from 1) of a parked body's zlib bytes."""

            data = ndb.BlobProperty()

        _MODELS = (ParkedEvent, ParkedEventPart)
    return _MODELS


_MODELS: tuple[Any, Any] | None = None


class DatastoreParking:
    """Parked events as ``ParkedEvent`` entities (large bodies compressed, in parts). At most
    ``max_parks`` wait on Datastore at once, another waits :data:`PARK_SLOT_WAIT` s then raises
    :class:`QueueUnavailable`; a page ends early at ``max_page_bytes``. Why: RELIABILITY.md."""

    def __init__(
        self, clients: NdbClients, max_parks: int = MAX_PARKS_AT_ONCE, max_page_bytes: int = MAX_PAGE_BYTES
    ):
        self.clients, self.max_page_bytes = clients, max_page_bytes
        self._slots = threading.BoundedSemaphore(max_parks)

    def park(self, request: TaskRequest, name: str) -> None:
        if not self._slots.acquire(timeout=PARK_SLOT_WAIT):
            raise QueueUnavailable("every parking slot is waiting on Datastore: try again later")
        try:
            self._park(request, name)
        finally:
            self._slots.release()

    def _park(self, request: TaskRequest, name: str) -> None:
        from google.cloud import ndb

        headers = [list(pair) for pair in request.headers]
        size = len(request.url.encode("utf-8", "surrogatepass")) + len(json.dumps(headers))
        if size > MAX_URL_AND_HEADERS_BYTES:
            raise QueueRefused(f"a task whose URL and headers take {size} bytes cannot be parked")
        inline = len(request.body) <= INLINE_BODY_BYTES
        packed = b"" if inline else zlib.compress(request.body)
        parts = [packed[start : start + PART_BYTES] for start in range(0, len(packed), PART_BYTES)]
        channels, events = names_carried(request)
        model, part = _models()
        with self.clients.context(), translated_errors():
            key = self._key(name)
            if parts:
                entities = [part(parent=key, id=index, data=data) for index, data in enumerate(parts, 1)]
                ndb.put_multi(entities, **CALL_OPTIONS)
            model(
                key=key,
                url=request.url,
                method=request.method,
                headers=headers,
                body=request.body if inline else None,
                body_parts=len(parts) or None,
                reason=_index_text(request.header(PARKED_REASON) or ""),
                channels=list(channels),
                events=list(events),
                parked_at=time.time(),
            ).put(**CALL_OPTIONS)

    def page(self, where: ParkedFilter, limit: int, cursor: str | None = None) -> ParkedPage:
        from google.api_core.exceptions import BadRequest
        from google.cloud import ndb

        try:
            start = ndb.Cursor(urlsafe=cursor) if cursor else None
        except ValueError:
            start = ndb.Cursor()
        if start is not None and not start.cursor:
            raise BadCursor("cursor is not one this list gave")
        model = _models()[0]
        with self.clients.context(), translated_errors():
            query = model.query()
            for prop, value in ((model.channels, where.channel), (model.events, where.event)):
                if value is not None:
                    query = query.filter(prop == value)
            if where.reason is not None:
                query = query.filter(model.reason == where.reason)
            try:
                entities, next_cursor, more = query.fetch_page(
                    min(limit, MAX_PAGE), start_cursor=start, **CALL_OPTIONS
                )
            except BadRequest as exc:
                if start is None:
                    raise
                raise BadCursor("cursor is not one this list gave") from exc
            tasks: list[ParkedTask] = []
            held = 0
            for entity in entities:
                if held >= self.max_page_bytes:
                    # The page ends early: the cursor after what it holds (keys only: cheap).
                    _, next_cursor, more = query.fetch_page(
                        len(tasks), start_cursor=start, keys_only=True, **CALL_OPTIONS
                    )
                    break
                tasks.append(self._parked(entity))
                held += len(tasks[-1].body)
        token = next_cursor.urlsafe().decode("ascii") if more and next_cursor else None
        return ParkedPage(tasks, token)

    def delete(self, name: str) -> None:
        with self.clients.context(), translated_errors():
            self._forget(self._entity(name))

    def replay(self, name: str, add: AddTask) -> str:
        with self.clients.context(), translated_errors():
            entity = self._entity(name)
            task_name = _queue_replay(self._parked(entity).original_request(), name, add)
            self._forget(entity)
        return task_name

    def _entity(self, name: str) -> Any:
        entity = self._key(name).get(**CALL_OPTIONS)
        if entity is None:
            raise ParkedTaskNotFound(f"no parked event named {name!r}")
        return entity

    def _parked(self, entity: Any) -> ParkedTask:
        """The parked event ``entity`` keeps, its body read back from its parts if it has any."""
        from google.cloud import ndb

        body = entity.body or b""
        if entity.body_parts:
            parts = ndb.get_multi(_part_keys(entity), **CALL_OPTIONS)
            if None in parts:
                raise QueueRefused(f"parked event {entity.key.id()!r} lost part of its body")
            body = zlib.decompress(b"".join(part.data for part in parts))
        request = TaskRequest(entity.url, body, tuple(tuple(pair) for pair in entity.headers), entity.method)
        return parked_task(entity.key.id(), request, entity.parked_at)

    def _forget(self, entity: Any) -> None:
        """Delete ``entity``, then its parts (parts left by a crash between are never read)."""
        from google.cloud import ndb

        entity.key.delete(**CALL_OPTIONS)
        if entity.body_parts:
            ndb.delete_multi(_part_keys(entity), **CALL_OPTIONS)

    def _key(self, name: str) -> Any:
        from google.cloud import ndb

        if not name or len(name) > MAX_INDEXED_CHARS:
            raise ParkedTaskNotFound(f"no parked event named {name[:100]!r}")
        return ndb.Key(_models()[0], name)


def _part_keys(entity: Any) -> list[Any]:
    from google.cloud import ndb

    return [ndb.Key(_models()[1], index, parent=entity.key) for index in range(1, entity.body_parts + 1)]


def _index_text(text: str) -> str:
    """``text`` cut to what an indexed Datastore string may hold (characters and bytes)."""
    text = text[:MAX_INDEXED_CHARS]
    while not _indexable(text):
        text = text[: len(text) * 3 // 4]
    return text


# -- memory (local development without gcloud) --------------------------------------------


class MemoryParking:
    """Parked events in this process's memory, at most ``capacity`` (then parking fails and
    the queue retries the task): for local development without the Datastore emulator."""

    def __init__(self, capacity: int = MAX_MEMORY_PARKED):
        self.capacity = capacity
        self._parked: dict[str, ParkedTask] = {}
        self._lock = threading.Lock()
        logs.log(
            logging.WARNING,
            "parked events are kept in this process's memory (local development without "
            "DATASTORE_EMULATOR_HOST): they are lost when it stops; start the Datastore emulator "
            "and set DATASTORE_EMULATOR_HOST to keep them",
        )

    def park(self, request: TaskRequest, name: str) -> None:
        with self._lock:
            if name not in self._parked and len(self._parked) >= self.capacity:
                raise QueueUnavailable(f"the in-memory parking holds {self.capacity} events already")
            self._parked[name] = parked_task(name, request, time.time())

    def page(self, where: ParkedFilter, limit: int, cursor: str | None = None) -> ParkedPage:
        with self._lock:
            size = min(limit, MAX_PAGE)
            names = sorted(n for n, task in self._parked.items() if where.matches(task))
            after = [n for n in names if cursor is None or n > cursor][: size + 1]
            tasks = [self._parked[n] for n in after[:size]]
        more = len(after) > size
        return ParkedPage(tasks, tasks[-1].name if more else None)

    def delete(self, name: str) -> None:
        with self._lock:
            if self._parked.pop(name, None) is None:
                raise ParkedTaskNotFound(f"no parked event named {name!r}")

    def replay(self, name: str, add: AddTask) -> str:
        with self._lock:
            task = self._parked.get(name)
        if task is None:
            raise ParkedTaskNotFound(f"no parked event named {name!r}")
        task_name = _queue_replay(task.original_request(), name, add)
        with self._lock:
            self._parked.pop(name, None)
        return task_name


def store_for(parked_store: str, clients: NdbClients) -> ParkingStore:
    """The store ``settings.parked_store`` names: ``memory`` or ``datastore``."""
    return MemoryParking() if parked_store == "memory" else DatastoreParking(clients)


def matching_names(store: ParkingStore, where: ParkedFilter, limit: int) -> list[str]:
    """The names of up to ``limit`` parked events matching ``where``."""
    names: list[str] = []
    cursor = None
    while len(names) < limit:
        page = store.page(where, limit - len(names), cursor)
        names.extend(task.name for task in page.tasks)
        if page.cursor is None:
            break
        cursor = page.cursor
    return names
