"""The app's refusals, and the one JSON answer every error gets: ``{"error": message}``.

A handler (or the server bridge, or the worker core) raises a :class:`Refused` with its
status; :func:`error_answer` turns it, or any unexpected exception (500, logged with its
traceback), into the answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus

from pushqueue import logs

Headers = list[tuple[str, str]]
Answer = tuple[int, Headers, bytes]  # status, headers, body
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class Refused(Exception):
    """A request the app refuses: answered ``status`` with ``{"error": message}`` and ``headers``."""

    status = 400

    def __init__(self, message: str, status: int | None = None, headers: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.headers = list(headers)


class BadQuery(Refused, ValueError):
    """A query parameter or header cannot be read or is out of range (400)."""


class BodyTooLarge(Refused):
    """The request body is larger than allowed (413)."""

    status = 413


class BodyRefused(Refused):
    """The server does not read the body whole (408, 413, 503): the connection is closed,
    and ``retry_after`` (seconds) is said when given."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        headers = [] if retry_after is None else [("Retry-After", str(retry_after))]
        super().__init__(message, status, [*headers, ("Connection", "close")])


def json_answer(status: int, value: object, headers: Sequence[tuple[str, str]] = ()) -> Answer:
    """``value`` as a JSON answer with ``status`` (and ``headers`` after the content ones)."""
    body = json.dumps(value).encode("utf-8")
    return status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers], body


def error_answer(error: BaseException, path: str = "") -> Answer:
    """The answer to ``error``: a :class:`Refused` with its status, message and headers;
    anything else 500 ``internal error``, logged with its traceback (call it while handling it)."""
    if isinstance(error, Refused):
        return json_answer(error.status, {"error": str(error)}, error.headers)
    logs.log(logging.ERROR, "unhandled error", exc_info=True, path=path[:300])
    return json_answer(500, {"error": "internal error"})


def wsgi_answer(answer: Answer, start_response: Callable[..., object]) -> list[bytes]:
    """Send ``answer`` as a WSGI app does: its status line and headers, then its body."""
    status, headers, body = answer
    start_response(_STATUS_LINES[status], headers)
    return [body]
