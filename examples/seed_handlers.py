"""The 000 seed's page handler moved to Python 3 (docs/migrating.md).

Served next to the app's routes with ``EXTRA_ROUTE_MODULES=examples.seed_handlers``. The
seed's ``WorkerPushRequestHandler`` is gone: the app's worker serves
``/worker/push/<channel>/<event>``.
"""

from __future__ import annotations

import webapp2  # was: from google.appengine.ext import webapp

from pushqueue import taskqueue  # was: from google.appengine.api.labs import taskqueue


class MyWebAppRequestHandler(webapp2.RequestHandler):  # was: webapp.RequestHandler
    def post(self) -> None:
        # Trigger some event through the queue: the app's worker sends it to Pusher.
        taskqueue.add(url="/worker/push/channel/event", params={"msg": "Hello world!"})
        self.response.headers["Content-Type"] = "text/plain"
        self.response.write("queued")


def routes(services: object) -> list[webapp2.Route]:
    """This module's route group (the seed had ``webapp.WSGIApplication([...])``)."""
    return [webapp2.Route("/my/action", MyWebAppRequestHandler, methods=["POST"])]
