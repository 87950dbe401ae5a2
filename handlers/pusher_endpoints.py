"""``/pusher/auth``, ``/pusher/user-auth``, ``/pusher/webhooks`` and ``/pusher/events/*``:
the app's route group for :class:`~handlers.pusher_auth.extension.PusherEndpoints`.

With ``DEMO_MODE=1`` the demo authorizer (:mod:`handlers.demo_auth`) decides; otherwise no
authorizer is installed and every private, presence and user-auth request gets 403.
Register your own hooks here (``endpoints.authorizer``, ``endpoints.on("member_added")``).
"""

from __future__ import annotations

import webapp2

from handlers.demo_auth import install_demo_auth
from handlers.pusher_auth.extension import PusherEndpoints
from settings import Settings


def routes(settings: Settings) -> list[webapp2.Route]:
    """The endpoints, signing with a client for ``settings`` (it only signs: no connection)."""
    endpoints = PusherEndpoints(settings.pusher_client())
    if settings.demo_mode:
        install_demo_auth(endpoints)
    return endpoints.routes()
