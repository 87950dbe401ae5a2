"""The views: each reads the request, asks the framework-neutral core, writes its reply."""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ...client import Pusher
from ...endpoints import (
    DEFAULT_MAX_BODY_BYTES,
    ReplayGuard,
    answer_channel_auth,
    answer_user_auth,
    receive_webhook,
    refusal_json,
    reply_json,
)
from ...webhooks import webhook_from_request
from ..shared import AuthAnswer, client_from_config, first_values
from . import hooks

_replay_guard = ReplayGuard()


@functools.cache
def client() -> Pusher:
    """The client of ``settings.PUSHER_*`` (Flask-Pusher's names, see ``client_from_config``)."""
    return client_from_config(lambda name: getattr(settings, name, None))


def _max_body_bytes() -> int:
    return int(getattr(settings, "PUSHER_MAX_BODY_BYTES", None) or DEFAULT_MAX_BODY_BYTES)


def _response(body: bytes, status: int, headers: dict[str, str]) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=headers.pop("Content-Type"))
    for name, value in headers.items():
        response[name] = value
    return response


def _too_large(request: HttpRequest) -> HttpResponse | None:
    """413 when the declared body is above the limit (before it is read)."""
    limit = _max_body_bytes()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _response(*refusal_json(400, "Content-Length is not a number"))
    if length > limit:
        return _response(*refusal_json(413, f"the body is {length} bytes; at most {limit} are accepted"))
    return None


def _form(request: HttpRequest) -> dict[str, str] | HttpResponse:
    try:
        return _too_large(request) or first_values(request.POST)
    except RequestDataTooBig as exc:
        return _response(*refusal_json(413, str(exc)))


def _answer(request: HttpRequest, answer: AuthAnswer) -> HttpResponse:
    """Read the form, ask the core's ``answer``, write its reply."""
    fields = _form(request)
    if isinstance(fields, HttpResponse):
        return fields
    return _response(*reply_json(answer(client(), hooks, request, fields)))


@require_POST
def channel_auth(request: HttpRequest) -> HttpResponse:
    """``POST auth``: one channel, or a pusher-js-auth batch."""
    return _answer(request, answer_channel_auth)


@require_POST
def user_auth(request: HttpRequest) -> HttpResponse:
    """``POST user-auth``: the signed-in user for ``pusher:signin``."""
    return _answer(request, answer_user_auth)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, group: str | None = None) -> HttpResponse:
    """``POST webhooks`` and ``events/<group>``: a webhook, checked before any handler runs."""
    refused = _too_large(request)
    if refused:
        return refused
    try:
        key, signature, body = webhook_from_request(request)
    except RequestDataTooBig as exc:
        return _response(*refusal_json(413, str(exc)))
    reply = receive_webhook(
        client(), hooks, _replay_guard, request, key=key, signature=signature, body=body, group=group
    )
    return _response(*reply_json(reply))
