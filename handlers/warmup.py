"""``GET /_ah/warmup``: App Engine's warmup request (``inbound_services: warmup``), also the
readiness check of the test fixtures. The services were built at start-up; answering
means the configuration was accepted."""

from __future__ import annotations

import webapp2

from settings import Settings


def routes(settings: Settings) -> list[webapp2.Route]:
    return [webapp2.Route("/_ah/warmup", WarmupHandler, methods=["GET"])]


class WarmupHandler(webapp2.RequestHandler):
    def get(self) -> None:
        self.response.content_type = "text/plain"
        self.response.write("OK")
