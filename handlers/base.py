"""What the app's handlers share: JSON answers, form fields, query parameters, admin checks."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import webapp2

from pushqueue import logs
from pushqueue.tasks import FORM_CONTENT_TYPE
from settings import whole_number

if TYPE_CHECKING:
    from handlers.application import Services

_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


class BadQuery(ValueError):
    """A query parameter cannot be read (the query string is not UTF-8) or is out of range."""


class JsonHandler(webapp2.RequestHandler):
    """A handler answering JSON, with the app's :class:`~handlers.application.Services`."""

    @property
    def services(self) -> Services:
        """The app's shared services."""
        return self.app.services

    def send_json(self, status: int, value: Any) -> None:
        """Answer ``status`` with ``value`` as JSON."""
        self.response.status_int = status
        self.response.content_type = "application/json"
        self.response.body = json.dumps(value).encode("utf-8")

    def send_error(self, status: int, message: str) -> None:
        """Answer ``status`` with ``{"error": message}``."""
        self.send_json(status, {"error": message})


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
