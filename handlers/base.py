"""What the app's handlers share: JSON answers, bounded bodies, form fields, query limits,
admin checks."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import webapp2

from pushqueue.tasks import FORM_CONTENT_TYPE

if TYPE_CHECKING:
    from handlers.application import Services

ADMIN_HEADER = "X-AppEngine-User-Is-Admin"  # "1" for a signed-in admin; App Engine strips it from others


class BodyTooLarge(Exception):
    """The request body is larger than allowed."""


class BadLimit(ValueError):
    """The ``limit`` parameter is not a whole number in range."""


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

    def read_body(self, limit: int) -> bytes:
        """The request body, refused early (``BodyTooLarge``) when above ``limit`` bytes."""
        length = self.request.content_length
        if length is not None and length > limit:
            raise BodyTooLarge(f"the body is {length} bytes; at most {limit} are accepted")
        body = self.request.body if length is not None else self.request.body_file_raw.read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        return body


class AdminHandler(JsonHandler):
    """Serves only App Engine admins (``login: admin`` in app.yaml; checked here too)."""

    def dispatch(self) -> Any:
        if not is_admin(self.request):
            return self.send_error(403, "administrators only")
        return super().dispatch()


def limit_param(request: webapp2.Request, *, default: int, maximum: int) -> int:
    """The ``limit`` query parameter (``default`` when absent); :class:`BadLimit` unless it is a
    whole number from 1 to ``maximum``."""
    text = request.GET.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise BadLimit(f"limit must be a whole number from 1 to {maximum}")
    return int(text)


def is_admin(request: webapp2.Request) -> bool:
    """Whether an App Engine admin signed in made the request."""
    return request.headers.get(ADMIN_HEADER) == "1"


def is_form(request: webapp2.Request) -> bool:
    """Whether the request body is form fields (``application/x-www-form-urlencoded``)."""
    return request.content_type == FORM_CONTENT_TYPE


def form_fields(body: bytes) -> dict[str, str]:
    """Form fields as a dict of strings; a repeated field keeps its first value (webapp's ``get``)."""
    fields: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        fields.setdefault(key, value)
    return fields
