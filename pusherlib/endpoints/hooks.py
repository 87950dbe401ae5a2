"""The app's decisions, registered with decorators: who may join which channel (``hooks.policy``),
who a presence member or signed-in user is, and what to do with each webhook event."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .policy import Authorizer, ChannelPolicy, from_authorizer

ChannelDataProvider = Callable[[Any, str, str], Mapping[str, Any] | None]
UserDataProvider = Callable[[Any, str], Mapping[str, Any] | None]
EventHandler = Callable[[dict[str, Any], Any], None]
WebhookHandler = Callable[[dict[str, Any], Any], None]

#: The webhook events Pusher sends.
WEBHOOK_EVENTS = (
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
    "subscription_count",
)
#: The groups that have their own route, as in Flask-Pusher (``/events/<group>``).
GROUP_ROUTES = ("channel_existence", "presence", "client")


class WebhookGroups:
    """``hooks.webhooks.presence`` etc.: decorators for a handler of every webhook
    received on that group's route, called as ``handler(webhook, request)``."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[WebhookHandler]] = {group: [] for group in GROUP_ROUTES}

    def _register(self, group: str, handler: WebhookHandler) -> WebhookHandler:
        self.handlers[group].append(handler)
        return handler

    def channel_existence(self, handler: WebhookHandler) -> WebhookHandler:
        """Register a handler of ``/events/channel_existence`` webhooks."""
        return self._register("channel_existence", handler)

    def presence(self, handler: WebhookHandler) -> WebhookHandler:
        """Register a handler of ``/events/presence`` webhooks."""
        return self._register("presence", handler)

    def client(self, handler: WebhookHandler) -> WebhookHandler:
        """Register a handler of ``/events/client`` webhooks."""
        return self._register("client", handler)


class PusherHooks:
    """The callbacks the auth and webhook endpoints answer with; without a subscribe rule on
    ``policy`` (or an :meth:`authorizer`) every private, presence and user-auth request gets 403."""

    def __init__(self, policy: ChannelPolicy | None = None) -> None:
        self.policy = policy or ChannelPolicy()
        self.presence_data: ChannelDataProvider | None = None
        self.signed_in_user: UserDataProvider | None = None
        self.event_handlers: dict[str, list[EventHandler]] = {name: [] for name in WEBHOOK_EVENTS}
        self.webhooks = WebhookGroups()

    def authorizer(self, function: Authorizer) -> Authorizer:
        """Register ``function(request, channel_name, socket_id)``: only ``True`` lets the socket join
        (else 403). It is the policy's default rule, asked after its patterns."""
        self.policy.subscribe_default(from_authorizer(function))
        return function

    def channel_data(self, function: ChannelDataProvider) -> ChannelDataProvider:
        """Register ``function(request, channel_name, socket_id) -> {"user_id", "user_info"}``;
        without it or a ``user_id`` the socket id is the user id; other keys become ``user_info``."""
        self.presence_data = function
        return function

    def user_data(self, function: UserDataProvider) -> UserDataProvider:
        """Register ``function(request, socket_id) -> {"id", "user_info", "watchlist"}`` for
        ``pusher:signin``, or ``None`` when nobody is signed in (403)."""
        self.signed_in_user = function
        return function

    def on(self, event_name: str) -> Callable[[EventHandler], EventHandler]:
        """Decorator: call ``handler(event, request)`` for each webhook event of that name."""
        if event_name not in self.event_handlers:
            raise ValueError(f"unknown webhook event {event_name!r}; known: {', '.join(WEBHOOK_EVENTS)}")

        def register(handler: EventHandler) -> EventHandler:
            self.event_handlers[event_name].append(handler)
            return handler

        return register
