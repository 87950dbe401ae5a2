"""The auth and webhook endpoints for tests: an offline Pusher client (signing needs no
server) and the extension's routes served by WebTest."""

from __future__ import annotations

from typing import Any

import webapp2
import webtest

from handlers.pusher_auth.extension import PusherEndpoints
from pusherlib import Pusher

APP_ID, KEY, SECRET = "4242", "test-key", "test-secret"
MASTER_KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="


def offline_endpoints(prefix: str = "/pusher", **client_options: Any) -> PusherEndpoints:
    """:class:`PusherEndpoints` for app ``4242`` (``test-key``/``test-secret``)."""
    return PusherEndpoints(Pusher(APP_ID, KEY, SECRET, **client_options), prefix=prefix)


def webtest_app(endpoints: PusherEndpoints) -> webtest.TestApp:
    """A WebTest app made of the extension's routes only."""
    return webtest.TestApp(webapp2.WSGIApplication(endpoints.routes()))
