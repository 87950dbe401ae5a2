"""The front end: ``POST /push/<channel>/<event>`` queues a Pusher event for the worker.

The event data is the JSON body (strict JSON, see :mod:`pusherlib.strict_json`) or the form
fields (a dict of strings). The connection to leave out, if any, is ``?socket_id=`` or
Echo's ``X-Socket-ID`` header (both, and different: 400). ``Idempotency-Key`` (1 to 255
printable ASCII characters) makes the same key from the same caller the same task (see
``enqueue_event``'s ``idempotency_key``). Answers ``202 {"task": "<name>"}`` once queued,
``400`` for invalid input (nothing queued), ``413`` above ``MAX_REQUEST_BYTES``, ``503`` when
the queue cannot be reached (the event is queued as the response starts: see
:mod:`pushqueue.coalesce`).

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
import re
from typing import TYPE_CHECKING

import webapp2

from handlers.base import JsonHandler, form_fields, form_refusal, is_form, query_param
from handlers.body_limit import read_body
from handlers.errors import BadQuery
from pusherlib import PusherError, PusherTypeError, PusherValueError, strict_json, validation
from pushqueue import logs

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,254}")

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
        publisher = self.publisher(channel, event)
        if publisher is None:
            return None
        body = read_body(self.request, self.services.settings.max_request_bytes)
        form = is_form(self.request)
        refused = form_refusal(self.request) if form else None
        if refused is not None:
            return self.send_error(400, refused)
        try:
            data = form_fields(body) if form else strict_json.loads(body)
            socket_id = self.socket_id()
            idempotency_key = self.idempotency_key(publisher)
        except (strict_json.JSONRefused, BadQuery) as exc:
            return self.send_error(400, str(exc))
        except ValueError:
            return self.send_error(400, "the body must be JSON or form fields (UTF-8)")
        try:
            task = self.services.events.enqueue_event(
                channel, event, data, socket_id, idempotency_key=idempotency_key
            )
        except (PusherValueError, PusherTypeError) as exc:
            return self.send_error(400, str(exc))
        self.send_json(202, {"task": task})

    def socket_id(self) -> str | None:
        """The connection to leave out: ``?socket_id=`` or Echo's ``X-Socket-ID`` header
        (:class:`BadQuery` when both are given and differ)."""
        in_query = query_param(self.request, "socket_id")
        in_header = self.request.headers.get("X-Socket-ID")
        if in_query is not None and in_header is not None and in_query != in_header:
            raise BadQuery("socket_id and the X-Socket-ID header differ: send one")
        return in_query if in_query is not None else in_header

    def idempotency_key(self, publisher: str) -> str | None:
        """The ``Idempotency-Key`` header scoped to ``publisher`` (:class:`BadQuery` when malformed)."""
        key = self.request.headers.get("Idempotency-Key")
        if key is None:
            return None
        if not IDEMPOTENCY_KEY.fullmatch(key):
            raise BadQuery("the Idempotency-Key header must be 1 to 255 printable ASCII characters")
        return f"{publisher}\n{key}"

    def publisher(self, channel: str, event: str) -> str | None:
        """Who publishes (see :meth:`access.Access.check_publish`), or ``None`` when they may
        not: then the refusal is answered and logged as one line."""
        authorization = self.request.headers.get("Authorization")
        check = self.services.access.check_publish(self.request, authorization, channel, event)
        refusal = check.refusal
        if refusal is None:
            return check.key
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
        return None
