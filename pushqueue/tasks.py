"""What every queue backend shares: the task to create, a parked task, the errors.
:func:`build_task` applies the bundled API's ``taskqueue.add`` rules, so both backends create
the same request."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

TASK_NAME = re.compile(r"[A-Za-z0-9_-]{1,500}")
QUEUE_NAME = re.compile(r"[A-Za-z0-9-]{1,100}")
MAX_ETA_SECONDS = 30 * 24 * 3600  # Cloud Tasks schedules at most 30 days ahead
BODY_METHODS = frozenset({"POST", "PUT"})
METHODS = frozenset({"GET", "HEAD", "DELETE", "POST", "PUT"})
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# Headers a parked task carries besides its original ones (what an operator reads).
PARKED_REASON = "X-Pusher-Parked-Reason"
PARKED_FROM = "X-Pusher-Parked-From"
PARKED_RETRIES = "X-Pusher-Parked-Retries"
ENCRYPTED_PREFIX = "private-encrypted-"
_PARKING_HEADERS = frozenset(h.lower() for h in (PARKED_REASON, PARKED_FROM, PARKED_RETRIES))


class QueueError(Exception):
    """A task could not be created or found."""


class QueueUnavailable(QueueError):
    """The queue service could not be reached or refused the call: try again later."""


class QueueRefused(QueueError):
    """The queue or store refused the call for good (an unknown queue, a record too large):
    retrying the same call cannot help."""


class InvalidTaskError(QueueRefused, ValueError):
    """The task's arguments are invalid (a caller's mistake)."""


class TaskAlreadyExistsError(QueueError):
    """A task with this name exists (or existed recently) in the queue."""


class ParkedTaskNotFound(QueueError):
    """No parked task has this name."""


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """An App Engine HTTP task: the request the queue will send to the app."""

    url: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "POST"
    queue_name: str | None = None  # None: the backend's default queue
    name: str | None = None  # None: the backend names it
    eta: float | None = None  # seconds since the epoch; None: now

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or ``None``."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


@dataclass(frozen=True, slots=True)
class Task:
    """A task that was added (what ``taskqueue.add`` returns, reduced to what is known)."""

    name: str
    queue_name: str
    url: str
    method: str
    eta: float | None = None


@dataclass(frozen=True, slots=True)
class ParkedTask:
    """A parked task as an operator sees it: its whole request and why it was parked."""

    name: str
    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    reason: str = ""
    original_task: str = ""
    retry_count: int = 0
    channels: tuple[str, ...] = ()  # the channels and event names it carries (see pushqueue.parking)
    events: tuple[str, ...] = ()
    parked_at: float | None = None  # seconds since the epoch

    @property
    def encrypted(self) -> bool:
        """Whether it may carry an event for a ``private-encrypted-`` channel (its plaintext)."""
        marker = ENCRYPTED_PREFIX
        return any(c.startswith(marker) for c in self.channels) or marker.encode() in self.body + (
            self.url.encode("utf-8", "replace")
        )

    def to_json(self) -> dict[str, Any]:
        """The task as the admin endpoint lists it: the body as text, or ``None`` (with
        ``body_withheld``) when it may hold a ``private-encrypted-`` channel's plaintext."""
        withheld = self.encrypted
        return {
            "name": self.name,
            "url": self.url,
            "method": self.method,
            "headers": self.headers,
            "body": None if withheld else self.body.decode("utf-8", "replace"),
            "body_withheld": withheld,
            "reason": self.reason,
            "original_task": self.original_task,
            "retry_count": self.retry_count,
            "channels": list(self.channels),
            "events": list(self.events),
            "parked_at": self.parked_at,
        }

    def original_request(self) -> TaskRequest:
        """The request as it was before it was parked."""
        return TaskRequest(self.url, self.body, _without_parking_headers(self.headers.items()), self.method)

    @classmethod
    def from_request(cls, name: str, request: TaskRequest) -> ParkedTask:
        """Read the parking headers back out of a parked task's request."""
        retries = request.header(PARKED_RETRIES) or "0"
        return cls(
            name=name,
            url=request.url,
            method=request.method,
            headers=dict(request.headers),
            body=request.body,
            reason=request.header(PARKED_REASON) or "",
            original_task=request.header(PARKED_FROM) or "",
            retry_count=parse_count(retries),
        )


def parse_count(text: str | None, limit: int = 10**9) -> int:
    """A count from a header: ASCII digits only (``int`` takes ``²`` or ``٣``), else 0."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > len(str(limit)):
        return 0
    return min(int(text), limit)


class Backend(Protocol):
    """A queue service: Cloud Tasks or the bundled App Engine task queue."""

    def add(self, task: TaskRequest) -> str:
        """Create ``task``; return its name."""
        ...

    def park(self, task: TaskRequest, name: str) -> None:
        """Keep ``task`` (with parking headers) under ``name`` until replayed (in the
        parking store, :mod:`pushqueue.parking`)."""
        ...


def parked_request(
    original: TaskRequest, *, reason: str, original_task: str, retry_count: int
) -> TaskRequest:
    """``original`` with the headers that say why and from where it was parked."""
    notes = (
        (PARKED_REASON, _header_value(reason)),
        (PARKED_FROM, original_task),
        (PARKED_RETRIES, str(retry_count)),
    )
    headers = _without_parking_headers(original.headers) + notes
    return TaskRequest(original.url, original.body, headers, original.method)


def _without_parking_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers if k.lower() not in _PARKING_HEADERS)


def _header_value(text: str, limit: int = 500) -> str:
    """``text`` fit for an HTTP header: one line of printable Latin-1, at most ``limit`` long."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return cleaned[:limit]


def build_task(
    url: str | None = None,
    params: Mapping[str, Any] | None = None,
    payload: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    queue_name: str | None = None,
    name: str | None = None,
    countdown: float | None = None,
    eta: datetime | float | None = None,
) -> TaskRequest:
    """A :class:`TaskRequest` from ``taskqueue.add``'s arguments, checked as it checks them."""
    method = (method or "POST").upper()
    if method not in METHODS:
        raise InvalidTaskError(f"method must be one of {', '.join(sorted(METHODS))}, got {method!r}")
    url = url or f"/_ah/queue/{queue_name or 'default'}"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or parts.fragment:
        raise InvalidTaskError(f"url must be a relative URL starting with '/', got {url!r}")
    if name is not None and not TASK_NAME.fullmatch(name):
        raise InvalidTaskError(f"task name must match {TASK_NAME.pattern}, got {name!r}")
    check_queue_name(queue_name)
    task_headers = dict(headers or {})
    body = _payload_bytes(payload, task_headers)
    if params:
        encoded = urlencode(list(_flatten(params)))
        if method in BODY_METHODS:
            if payload is not None:
                raise InvalidTaskError("give params or payload for a POST or PUT task, not both")
            body = encoded.encode("ascii")
            task_headers.setdefault("content-type", FORM_CONTENT_TYPE)
        else:
            url = f"{url}{'&' if parts.query else '?'}{encoded}"
    elif body and method not in BODY_METHODS:
        raise InvalidTaskError(f"a {method} task cannot carry a payload")
    return TaskRequest(
        url=url,
        body=body,
        headers=tuple(task_headers.items()),
        method=method,
        queue_name=queue_name,
        name=name,
        eta=eta_seconds(countdown, eta),
    )


def _payload_bytes(payload: str | bytes | None, headers: dict[str, str]) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, str):
        if payload and not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "text/plain; charset=utf-8"
        return payload.encode("utf-8")
    if isinstance(payload, bytes):
        return payload
    raise InvalidTaskError(f"payload must be str or bytes, not {type(payload).__name__}")


def _flatten(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Form fields as ``taskqueue`` sends them: a list value gives the field once per item."""
    for key, value in params.items():
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            yield key, _text(value)
        else:
            yield from ((key, _text(item)) for item in value)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def eta_seconds(countdown: float | None, eta: datetime | float | None) -> float | None:
    """When a task should run, in seconds since the epoch (``None``: now), from
    ``taskqueue.add``'s ``countdown`` (seconds from now) or ``eta``; refused as it refuses them."""
    if countdown is not None and eta is not None:
        raise InvalidTaskError("give countdown or eta, not both")
    if countdown is not None:
        if not _is_number(countdown) or not 0 <= countdown < math.inf:
            raise InvalidTaskError(f"countdown must be a number of seconds, at least 0, got {countdown!r}")
        seconds = time.time() + countdown
    elif isinstance(eta, datetime):
        # As in taskqueue: a naive datetime is UTC.
        seconds = (eta if eta.tzinfo else eta.replace(tzinfo=UTC)).timestamp()
    elif eta is None:
        return None
    elif not _is_number(eta) or not math.isfinite(eta):
        raise InvalidTaskError(f"eta must be a datetime or seconds since the epoch, got {eta!r}")
    else:
        seconds = float(eta)
    if seconds > time.time() + MAX_ETA_SECONDS:
        raise InvalidTaskError("a task can be scheduled at most 30 days ahead")
    return seconds


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_queue_name(queue_name: str | None) -> str | None:
    """``queue_name`` when it is a valid queue name (or ``None``), else :class:`InvalidTaskError`."""
    if queue_name is not None and (not isinstance(queue_name, str) or not QUEUE_NAME.fullmatch(queue_name)):
        raise InvalidTaskError(f"queue name must match {QUEUE_NAME.pattern}, got {queue_name!r}")
    return queue_name
