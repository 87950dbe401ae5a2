"""``/pusher/auth``, ``/pusher/user-auth``, ``/pusher/webhooks`` and ``/pusher/events/*``:
:class:`~handlers.pusher_auth.extension.PusherEndpoints` with the app's channel policy
(:mod:`access.channels`); register your own hooks here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import webapp2

from handlers.demo_auth import install_demo_members
from handlers.pusher_auth.extension import PusherEndpoints
from handlers.pusher_auth.replay_store import DatastoreReplayStore
from pusherlib.endpoints import ReplayGuard, ReplayStore

if TYPE_CHECKING:
    from handlers.application import Services


def routes(services: Services) -> list[webapp2.Route]:
    """The endpoints, signing and checking webhooks with the process's one Pusher client,
    deciding with the app's channel policy, refusing bodies above ``MAX_REQUEST_BYTES``."""
    endpoints = PusherEndpoints(
        services.pusher,
        replay_guard=replay_store(services),
        max_body_bytes=services.settings.max_request_bytes,
        policy=services.access.policy,
    )
    if services.settings.demo_mode:
        install_demo_members(endpoints)
    return endpoints.routes()


def replay_store(services: Services) -> ReplayStore:
    """Where handled webhooks are remembered: Datastore, shared by every instance and route;
    this process's memory only in local development without the Datastore emulator."""
    if services.ndb is not None and services.settings.parked_store == "datastore":
        return DatastoreReplayStore(services.ndb)
    return ReplayGuard()
