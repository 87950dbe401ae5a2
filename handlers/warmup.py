"""``GET /_ah/warmup``: App Engine's warmup request (``inbound_services: warmup``), also the
readiness check of the test fixtures. The services were built at start-up; answering
means the configuration was accepted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import webapp2

if TYPE_CHECKING:
    from handlers.application import Services


def routes(services: Services) -> list[webapp2.Route]:
    """The warmup route."""
    return [webapp2.Route("/_ah/warmup", WarmupHandler, methods=["GET"])]


class WarmupHandler(webapp2.RequestHandler):
    """Answers ``OK``: the app started with a valid configuration."""

    def get(self) -> None:
        self.response.content_type = "text/plain"
        self.response.write("OK")
