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

from access.publishers import PublisherRefused
from handlers.base import BadQuery, JsonHandler, form_fields, is_form, query_param
from handlers.body_limit import BodyTooLarge, read_body
from handlers.pusher_auth import Caller, Publication
from pusherlib import PusherError, PusherTypeError, PusherValueError, strict_json, validation
from pushqueue import logs, oidc

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
        try:
            data = form_fields(body) if is_form(self.request) else strict_json.loads(body)
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
        """Prove the caller, ask the policy and the rate limit; answer and log a refusal."""
        access = self.services.access
        caller: Caller | None = None
        try:
            caller = access.publishers.identify(self.request.headers.get("Authorization"))
        except PublisherRefused as exc:
            return self.refuse(exc.status, str(exc), channel, event, caller)
        except oidc.CertsUnavailable:
            return self.refuse(503, "the OIDC token cannot be checked now", channel, event, caller)
        decision = access.policy.may_publish(Publication(self.request, channel, event, caller))
        if not decision.allowed:
            reason = f"no channel rule lets {caller or 'an anonymous caller'} publish here ({decision.rule})"
            return self.refuse(403, reason, channel, event, caller)
        key = str(caller) if caller else f"anonymous:{self.request.remote_addr}"
        wait = access.publish_limit.wait(key)
        if wait is not None:
            self.response.headers["Retry-After"] = str(wait)
            return self.refuse(429, f"too many events from {key}: retry in {wait} s", channel, event, caller)
        return True

    def refuse(self, status: int, reason: str, channel: str, event: str, caller: Caller | None) -> bool:
        """Answer ``status`` with ``reason`` and log it as one line; ``False``."""
        logs.log(
            logging.WARNING,
            "publish refused",
            status=status,
            reason=reason,
            channel=channel,
            event=event,
            caller=str(caller) if caller else None,
            remote_addr=self.request.remote_addr,
        )
        if status == 401:
            self.response.headers["WWW-Authenticate"] = "Bearer"
        self.send_error(status, reason)
        return False
