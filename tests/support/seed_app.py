"""The 000 seed's front-end handler, as it was written (one import changed), served with
the app's routes: ``gunicorn 'tests.support.seed_app:create()'`` (as dev_appserver runs it in
tests/app/test_dev_appserver.py) or added to a test app with :func:`seed_routes`."""

from __future__ import annotations

import webapp2

from pushqueue import taskqueue  # the seed imported google.appengine.api.labs.taskqueue


class MyWebAppRequestHandler(webapp2.RequestHandler):
    """The seed's front-end handler, as it was written."""

    def post(self):
        # Trigger some event with pusherapp, using a taskqueue
        # The task will be picked up by WorkerPushRequestHandler, below
        taskqueue.add(url="/worker/push/channel/event", params={"msg": "Hello world!"})


def seed_routes(services) -> list[webapp2.Route]:
    """``POST /seed``: the seed's handler."""
    return [webapp2.Route("/seed", MyWebAppRequestHandler)]


def create():
    """The app of ``main.py`` plus ``/seed``, configured from the environment."""
    from handlers.application import create_app
    from main import ROUTE_GROUPS
    from settings import Settings

    return create_app(Settings.from_env(), (*ROUTE_GROUPS, seed_routes))
