"""The front end: ``POST /push/<channel>/<event>`` queues a Pusher event for the worker.

The event data is the JSON body (any JSON value: strict JSON, without ``NaN``, ``Infinity``
or out-of-range numbers, nested at most 256 levels deep, see :mod:`pusherlib.strict_json`)
or the form fields (a dict of strings). The socket id to exclude, if any, is the
``socket_id`` query parameter. Answers ``202 {"task": "<name>"}`` once the task is queued,
``400`` for invalid input (nothing queued), ``413`` for a body above ``MAX_REQUEST_BYTES``.
The event is queued when the response starts (request-scoped coalescing, see
:mod:`pushqueue.coalesce`), which turns the answer into ``503`` if the queue cannot be
reached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import webapp2

from handlers.base import BadQuery, JsonHandler, form_fields, is_form, query_param
from handlers.body_limit import BodyTooLarge, read_body
from pusherlib import PusherTypeError, PusherValueError, strict_json

if TYPE_CHECKING:
    from handlers.application import Services


def routes(services: Services) -> list[webapp2.Route]:
    """The front end's route."""
    return [webapp2.Route("/push/<channel>/<event>", PushHandler, methods=["POST"])]


class PushHandler(JsonHandler):
    """Checks an event and queues it for the worker (see the module docstring)."""

    def post(self, channel: str, event: str) -> None:
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
