"""pusherlib: a fast, complete Pusher Channels HTTP API client; see docs/pusherlib.md."""

from .client import Pusher, pusher_from_url
from .errors import (
    PusherBadAuth,
    PusherBadRequest,
    PusherBadStatus,
    PusherConnectionError,
    PusherError,
    PusherForbidden,
    PusherHTTPError,
    PusherNotSent,
    PusherPayloadTooLarge,
    PusherRateLimited,
    PusherServerError,
    PusherTimeout,
    PusherTypeError,
    PusherValueError,
)
from .instrumentation import RequestRecord
from .legacy import TriggerResult
from .results import (
    BatchResponse,
    ChannelCounts,
    ChannelInfo,
    ChannelsResponse,
    TriggerResponse,
    UsersResponse,
)
from .transports import AsyncioTransport, HTTPTransport, Request, Response, Transport, UrlfetchTransport
from .webhooks import Webhook, WebhookRejected

__all__ = [
    "AsyncioTransport",
    "BatchResponse",
    "ChannelCounts",
    "ChannelInfo",
    "ChannelsResponse",
    "HTTPTransport",
    "Pusher",
    "PusherBadAuth",
    "PusherBadRequest",
    "PusherBadStatus",
    "PusherConnectionError",
    "PusherError",
    "PusherForbidden",
    "PusherHTTPError",
    "PusherNotSent",
    "PusherPayloadTooLarge",
    "PusherRateLimited",
    "PusherServerError",
    "PusherTimeout",
    "PusherTypeError",
    "PusherValueError",
    "Request",
    "RequestRecord",
    "Response",
    "Transport",
    "TriggerResponse",
    "TriggerResult",
    "UrlfetchTransport",
    "UsersResponse",
    "Webhook",
    "WebhookRejected",
    "pusher_from_url",
]
