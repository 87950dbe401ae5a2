"""The front end: ``POST /push/<channel>/<event>`` queues a Pusher event for the worker.

The event data is the JSON body (any JSON value: strict JSON, without ``NaN``, ``Infinity``
or out-of-range numbers, nested at most 256 levels deep, see :mod:`pusherlib.strict_json`)
or the form fields (a dict of strings). The socket id to exclude, if any, is the
``socket_id`` query parameter. Answers ``202 {"task": "<name>"}`` once the task is queued,
``400`` for invalid input (nothing queued), ``413`` for a body above ``MAX_REQUEST_BYTES``.
The event is queued when the response starts (request-scoped coalescing, see
:mod:`pushqueue.coalesce`), which turns the answer into ``503`` if the queue cannot be
reached.

Publishing is denied by default, and checked before the body is read: the caller proves
itself with ``Authorization: Bearer`` (a ``PUSH_TOKENS`` token or a Google OIDC token, see
:mod:`access.publishers`; 401 when it proves nothing, 503 when an OIDC token cannot be
checked now), then the app's channel policy (:mod:`access.channels`) must allow the
event on the channel (403 otherwise), then the caller's rate limit must allow one more
(429 with ``Retry-After``). Every refusal is one log line saying why (never a credential).
Reserved event names (``pusher:``, ``pusher_internal:``) and invalid names get 400 first.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import webapp2

from handlers.base import BadQuery, JsonHandler, form_fields, form_refusal, is_form, query_param
from handlers.body_limit import BodyTooLarge, read_body
from pusherlib import PusherError, PusherTypeError, PusherValueError, strict_json, validation
from pushqueue import logs

if TYPE_CHECKING:
    from handlers.application import Services


def routes(services: Services) -> list[webapp2.Route]:
    """The front end's route."""
    return [webapp2.Route("/push/<channel>/<event>", PushHandler, methods=["POST"])]


class PushHandler(JsonHandler):
    """Checks an event and queues it for the worker (see the module docstring)."""

    def post(self, channel: str, event: str) -> None:
        try:
            validation.channel_name(channel)
            validation.event_name(event)
        except PusherError as exc:
            return self.send_error(400, str(exc))
        if not self.allowed(channel, event):
            return None
        try:
            body = read_body(self.request, self.services.settings.max_request_bytes)
        except BodyTooLarge as exc:
            return self.send_error(413, str(exc))
        form = is_form(self.request)
        refused = form_refusal(self.request) if form else None
        if refused is not None:
            return self.send_error(400, refused)
        try:
            data = form_fields(body) if form else strict_json.loads(body)
            socket_id = query_param(self.request, "socket_id")
        except (strict_json.JSONRefused, BadQuery) as exc:
            return self.send_error(400, str(exc))
        except ValueError:
            return self.send_error(400, "the body must be JSON or form fields (UTF-8)")
        try:
            task = self.services.events.enqueue_event(channel, event, data, socket_id)
        except (PusherValueError, PusherTypeError) as exc:
            return self.send_error(400, str(exc))
        self.send_json(202, {"task": task})

    def allowed(self, channel: str, event: str) -> bool:
        """Whether the caller may publish (see :meth:`access.Access.check_publish`); when not,
        answer and log why as one line."""
        authorization = self.request.headers.get("Authorization")
        refusal = self.services.access.check_publish(self.request, authorization, channel, event)
        if refusal is None:
            return True
        logs.log(
            logging.WARNING,
            "publish refused",
            status=refusal.status,
            reason=refusal.reason,
            channel=channel,
            event=event,
            caller=str(refusal.caller) if refusal.caller else None,
            remote_addr=self.request.remote_addr,
        )
        if refusal.status == 401:
            self.response.headers["WWW-Authenticate"] = "Bearer"
        if refusal.retry_after is not None:
            self.response.headers["Retry-After"] = str(refusal.retry_after)
        self.send_error(refusal.status, refusal.reason)
        return False
