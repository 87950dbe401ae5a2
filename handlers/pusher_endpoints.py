"""``/pusher/auth``, ``/pusher/user-auth``, ``/pusher/webhooks`` and ``/pusher/events/*``:
the app's route group for :class:`~handlers.pusher_auth.extension.PusherEndpoints`.

With ``DEMO_MODE=1`` the demo authorizer (:mod:`handlers.demo_auth`) decides; otherwise no
authorizer is installed and every private, presence and user-auth request gets 403.
Register your own hooks here (``endpoints.authorizer``, ``endpoints.on("member_added")``).
Webhook replays are refused across all the webhook routes and every instance (see
:mod:`handlers.pusher_auth.webhook_receiver`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import webapp2

from handlers.demo_auth import install_demo_auth
from handlers.pusher_auth.extension import PusherEndpoints
from handlers.pusher_auth.replay_store import DatastoreReplayStore
from handlers.pusher_auth.webhook_receiver import ReplayGuard, ReplayStore

if TYPE_CHECKING:
    from handlers.application import Services


def routes(services: Services) -> list[webapp2.Route]:
    """The endpoints, signing and checking webhooks with the process's one Pusher client,
    refusing bodies above ``MAX_REQUEST_BYTES``."""
    endpoints = PusherEndpoints(
        services.pusher,
        replay_guard=replay_store(services),
        max_body_bytes=services.settings.max_request_bytes,
    )
    if services.settings.demo_mode:
        install_demo_auth(endpoints)
    return endpoints.routes()


def replay_store(services: Services) -> ReplayStore:
    """Where handled webhooks are remembered: Datastore, shared by every instance and route;
    this process's memory only in local development without the Datastore emulator."""
    if services.ndb is not None and services.settings.parked_store == "datastore":
        return DatastoreReplayStore(services.ndb)
    return ReplayGuard()
