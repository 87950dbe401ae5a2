"""The webapp2 extension: routes under a prefix (default ``/pusher``) that answer with
pusherlib's framework-neutral endpoints (:mod:`pusherlib.endpoints`).

    endpoints = PusherEndpoints(settings.pusher_client())

    @endpoints.policy.subscribe("private-orders.{order_id}")
    def customer_follows_order(subscription, order_id):
        return owns_order(current_user(subscription.request), order_id)

    app = webapp2.WSGIApplication([..., *endpoints.routes()])
"""

from __future__ import annotations

import webapp2

from handlers.body_limit import read_body
from handlers.errors import BodyTooLarge
from pusherlib import Pusher
from pusherlib.endpoints import (
    DEFAULT_MAX_BODY_BYTES,
    GROUP_ROUTES,
    ChannelPolicy,
    PusherHooks,
    ReplayGuard,
    ReplayStore,
    Reply,
    answer_channel_auth,
    answer_user_auth,
    receive_webhook,
    refusal,
    reply_json,
)
from pusherlib.webhooks import webhook_from_request


class PusherEndpoints(PusherHooks):
    """Channel and user auth and webhooks under one prefix; a body above ``max_body_bytes``
    gets 413 unread; ``policy``: the channel policy to share (a new, empty one by default)."""

    def __init__(
        self,
        client: Pusher,
        prefix: str = "/pusher",
        replay_guard: ReplayStore | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        policy: ChannelPolicy | None = None,
    ):
        super().__init__(policy)
        self.client = client
        self.prefix = prefix.rstrip("/")
        self.replay_guard: ReplayStore = replay_guard or ReplayGuard()
        self.max_body_bytes = max_body_bytes

    def routes(self) -> list[webapp2.Route]:
        """The routes to add to a ``webapp2.WSGIApplication``."""
        groups = "|".join(GROUP_ROUTES)
        return [
            webapp2.Route(f"{self.prefix}/auth", self.channel_auth, "pusher-auth", methods=["POST"]),
            webapp2.Route(f"{self.prefix}/user-auth", self.user_auth, "pusher-user-auth", methods=["POST"]),
            webapp2.Route(f"{self.prefix}/webhooks", self.webhook, "pusher-webhooks", methods=["POST"]),
            webapp2.Route(
                f"{self.prefix}/events/<group:{groups}>", self.webhook, "pusher-events", methods=["POST"]
            ),
        ]

    def channel_auth(self, request: webapp2.Request) -> webapp2.Response:
        """``POST <prefix>/auth``: one channel, or a pusher-js-auth batch."""
        return _json(
            self._too_large(request) or answer_channel_auth(self.client, self, request, request.POST)
        )

    def user_auth(self, request: webapp2.Request) -> webapp2.Response:
        """``POST <prefix>/user-auth``: the signed-in user for ``pusher:signin``."""
        return _json(self._too_large(request) or answer_user_auth(self.client, self, request, request.POST))

    def webhook(self, request: webapp2.Request, group: str | None = None) -> webapp2.Response:
        """``POST <prefix>/webhooks`` and ``<prefix>/events/<group>``: a checked webhook."""
        too_large = self._too_large(request)
        if too_large:
            return _json(too_large)
        key, signature, body = webhook_from_request(request)
        reply = receive_webhook(
            self.client,
            self,
            self.replay_guard,
            request,
            key=key,
            signature=signature,
            body=body,
            group=group,
        )
        return _json(reply)

    def _too_large(self, request: webapp2.Request) -> Reply | None:
        """413 when the body is above ``max_body_bytes`` (declared, or read up to the limit)."""
        try:
            read_body(request, self.max_body_bytes)
        except BodyTooLarge as exc:
            return refusal(413, str(exc))
        return None


def _json(reply: Reply) -> webapp2.Response:
    body, status, headers = reply_json(reply)
    response = webapp2.Response(body, status=status)
    response.headers.update(headers)
    return response
