"""The parked-task admin, for App Engine admins only (``login: admin`` and a header check).

* ``GET /admin/parked?limit=100``: ``{"parked": [task, ...]}``, each with its whole request
  (URL, headers, body) and why it was parked.
* ``POST /admin/parked/<name>/replay``: send one parked task to the worker again.
* ``POST /admin/parked/replay``: the same for every listed task (``limit`` as above).

A replay answers ``{"replayed": [names]}``; how a backend replays is in its docstring
(Cloud Tasks: run now from the paused parked queue, the task leaves it once delivered;
bundled queue: moved back to ``pusher``). Unknown name: 404; queue unreachable: 503.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import webapp2

from handlers.base import AdminHandler, BadQuery, limit_param
from pushqueue import ParkedTaskNotFound, QueueError

if TYPE_CHECKING:
    from handlers.application import Services

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def routes(services: Services) -> list[webapp2.Route]:
    """The parked-task admin routes."""
    return [
        webapp2.Route("/admin/parked", ParkedListHandler, methods=["GET"]),
        webapp2.Route("/admin/parked/replay", ReplayAllHandler, methods=["POST"]),
        webapp2.Route("/admin/parked/<name>/replay", ReplayOneHandler, methods=["POST"]),
    ]


class ParkedAdminHandler(AdminHandler):
    """Answers the queue's errors: 404 for an unknown task, 503 when unreachable."""

    def handle_exception(self, exception: Exception, debug: bool) -> Any:
        if isinstance(exception, BadQuery):
            return self.send_error(400, str(exception))
        if isinstance(exception, ParkedTaskNotFound):
            return self.send_error(404, str(exception))
        if isinstance(exception, QueueError):
            return self.send_error(503, f"the queue cannot be reached: {exception}")
        raise exception

    def limit(self) -> int:
        """How many parked tasks to list or replay (``?limit=``)."""
        return limit_param(self.request, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)

    def replay(self, names: list[str]) -> None:
        """Send the parked tasks ``names`` to the worker again; answer with their names."""
        for name in names:
            self.services.backend.replay(name)
        self.send_json(200, {"replayed": names})


class ParkedListHandler(ParkedAdminHandler):
    """``GET /admin/parked``: the parked tasks, each with its whole request."""

    def get(self) -> None:
        parked = self.services.backend.list_parked(self.limit())
        self.send_json(200, {"parked": [task.to_json() for task in parked]})


class ReplayOneHandler(ParkedAdminHandler):
    """``POST /admin/parked/<name>/replay``: one parked task to the worker again."""

    def post(self, name: str) -> None:
        self.replay([name])


class ReplayAllHandler(ParkedAdminHandler):
    """``POST /admin/parked/replay``: every listed parked task to the worker again."""

    def post(self) -> None:
        self.replay([task.name for task in self.services.backend.list_parked(self.limit())])
