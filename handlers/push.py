"""``POST /push/<channel>/<event>``: checks the event and its publisher (:mod:`access`),
then queues it for the worker. Answers: [docs/operations.md](../docs/operations.md); who
may publish: [docs/security.md](../docs/security.md).
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
