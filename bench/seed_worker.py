"""The seed's worker, as a baseline: webapp2 and the official ``pusher`` library.

The handler of the project's first seed (``WorkerPushRequestHandler``), ported only as far
as Python 3 needs: it builds a Pusher client per task, turns the request's parameters into
the event's data, triggers, and answers ``OK``. Served by the same server as ``main:app``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pusher
import webapp2

from handlers.rsgi_bridge import RsgiBridge

_URL = urlsplit(os.environ.get("PUSHER_URL", "http://key:secret@127.0.0.1:6001/apps/1"))


class WorkerPushRequestHandler(webapp2.RequestHandler):
    def post(self, channel: str, event: str) -> None:
        client = pusher.Pusher(
            app_id=_URL.path.rsplit("/", 1)[-1],
            key=_URL.username,
            secret=_URL.password,
            host=_URL.hostname,
            port=_URL.port,
            ssl=_URL.scheme == "https",
        )
        data = {argument: self.request.get(argument) for argument in self.request.arguments()}
        client.trigger(channel, event, data)
        self.response.headers["Content-Type"] = "text/plain"
        self.response.out.write("OK")


class WarmupHandler(webapp2.RequestHandler):
    """``/_ah/warmup``: how the harness sees that the server is up (not in the seed)."""

    def get(self) -> None:
        self.response.out.write("OK")


app = webapp2.WSGIApplication(
    [(r"/worker/push/([^/]+)/([^/]+)", WorkerPushRequestHandler), ("/_ah/warmup", WarmupHandler)]
)
# Under the entrypoint's RSGI interface, through the same bridge as the app (see app.yaml).
rsgi_app = RsgiBridge(app, threads=8, body_timeout=10, max_body_bytes=1024 * 1024)
