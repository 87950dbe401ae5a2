"""pusherlib: a fast, complete Pusher Channels HTTP API client.

from pusherlib import Pusher
pusher = Pusher.from_env()            # PUSHER_URL=https://key:secret@host/apps/123
pusher.trigger("my-channel", "my-event", {"message": "hello"})
"""

from .client import Pusher, pusher_from_url
from .errors import (
    PusherBadAuth,
    PusherBadRequest,
    PusherBadStatus,
    PusherConnectionError,
    PusherError,
    PusherForbidden,
    PusherHTTPError,
    PusherPayloadTooLarge,
    PusherRateLimited,
    PusherServerError,
    PusherTimeout,
    PusherTypeError,
    PusherValueError,
)
from .legacy import TriggerResult
from .transports import AsyncioTransport, HTTPTransport, Transport, UrlfetchTransport
from .webhooks import Webhook, WebhookRejected

__all__ = [
    "AsyncioTransport",
    "HTTPTransport",
    "Pusher",
    "PusherBadAuth",
    "PusherBadRequest",
    "PusherBadStatus",
    "PusherConnectionError",
    "PusherError",
    "PusherForbidden",
    "PusherHTTPError",
    "PusherPayloadTooLarge",
    "PusherRateLimited",
    "PusherServerError",
    "PusherTimeout",
    "PusherTypeError",
    "PusherValueError",
    "Transport",
    "TriggerResult",
    "UrlfetchTransport",
    "Webhook",
    "WebhookRejected",
    "pusher_from_url",
]
