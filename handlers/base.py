"""What the app's handlers share: JSON answers, form fields, query parameters, admin checks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import webapp2

from handlers.errors import Answer, BadQuery, Refused, error_answer, json_answer
from pushqueue import logs
from pushqueue.tasks import FORM_CONTENT_TYPE
from settings import whole_number

if TYPE_CHECKING:
    from handlers.application import Services

_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


class JsonHandler(webapp2.RequestHandler):
    """A handler answering JSON, with the app's :class:`~handlers.application.Services`."""

    @property
    def services(self) -> Services:
        """The app's shared services."""
        return self.app.services

    def send_json(self, status: int, value: Any) -> None:
        """Answer ``status`` with ``value`` as JSON."""
        self.send_answer(json_answer(status, value))

    def send_error(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer ``status`` with ``{"error": message}`` (see :mod:`handlers.errors`)."""
        self.send_answer(error_answer(Refused(message, status, headers)))

    def send_answer(self, answer: Answer) -> None:
        """Answer with ``answer``'s status, headers and body."""
        status, headers, body = answer
        response = self.response
        response.status_int = status
        for name, value in headers:
            response.headers[name] = value
        response.body = body

    def handle_exception(self, exception: Exception, debug: bool) -> None:
        """Answer a :class:`~handlers.errors.Refused` raised by the handler; re-raise the rest."""
        if not isinstance(exception, Refused):
            raise exception
        self.send_error(exception.status, str(exception), exception.headers)


class AdminHandler(JsonHandler):
    """Serves only proven administrators (see :mod:`access.admins`: App Engine's
    ``login: admin``, an IAP assertion, or the local-development switch)."""

    def dispatch(self) -> Any:
        if not require_admin(self):
            return None
        return super().dispatch()


def query_param(request: webapp2.Request, name: str) -> str | None:
    """The query parameter ``name`` (``None`` when absent); :class:`BadQuery` when the query
    string is not UTF-8 once percent-decoded."""
    try:
        return request.GET.get(name)
    except UnicodeDecodeError:
        raise BadQuery("the query string is not UTF-8 once percent-decoded") from None


def limit_param(request: webapp2.Request, *, default: int, maximum: int) -> int:
    """The ``limit`` query parameter (``default`` when absent); :class:`BadQuery` unless it is a
    whole number from 1 to ``maximum``."""
    text = query_param(request, "limit")
    if text is None:
        return default
    number = whole_number(text)
    if number is None or not 1 <= number <= maximum:
        raise BadQuery(f"limit must be a whole number (ASCII digits) from 1 to {maximum}")
    return number


def require_admin(handler: JsonHandler) -> bool:
    """Whether a proven administrator made the handler's request; when not, answer 403
    (503 when the proof cannot be checked now) and log why."""
    check = handler.services.access.admins.check(handler.request.headers)
    if not check.allowed:
        logs.log(logging.WARNING, "admin request refused", path=handler.request.path, reason=check.detail)
        handler.send_error(check.status, check.detail)
    return check.allowed


def form_refusal(request: webapp2.Request) -> str | None:
    """Why the request's body cannot be read as form fields (a charset other than UTF-8, a
    multipart body without a boundary), or ``None``; every form-reading path asks this."""
    params = _content_type_params(request.headers.get("Content-Type", ""))
    charset = params.get("charset", "utf-8").lower()
    if charset not in _UTF8_NAMES:
        return f"form bodies must be UTF-8 (charset={charset[:40]!r} is not)"
    if request.content_type == "multipart/form-data" and not params.get("boundary"):
        return "a multipart/form-data body needs a boundary parameter"
    return None


def _content_type_params(header: str) -> dict[str, str]:
    """The parameters of a ``Content-Type`` header, names lower-cased, quotes removed."""
    params = {}
    for part in header.split(";")[1:]:
        name, _, value = part.partition("=")
        params.setdefault(name.strip().lower(), value.strip().strip('"'))
    return params


def is_form(request: webapp2.Request) -> bool:
    """Whether the request body is form fields (``application/x-www-form-urlencoded``)."""
    return request.content_type == FORM_CONTENT_TYPE


def form_fields(body: bytes) -> dict[str, str]:
    """Form fields as a dict of strings; a repeated field keeps its first value (webapp's ``get``)."""
    fields: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        fields.setdefault(key, value)
    return fields
