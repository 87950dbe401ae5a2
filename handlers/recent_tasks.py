"""``GET /tasks/recent?limit=50``: this process's latest task outcomes (see
:mod:`pushqueue.tasklog`), newest first, as ``{"tasks": [...]}``.

Served when ``DEMO_MODE`` is on (the demo page shows it) or to a proven administrator
(see :mod:`access.admins`): channel names can say who a user is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import webapp2

from handlers.base import JsonHandler, limit_param, require_admin
from pushqueue import tasklog

if TYPE_CHECKING:
    from handlers.application import Services

DEFAULT_LIMIT = 50
MAX_LIMIT = tasklog.CAPACITY


def routes(services: Services) -> list[webapp2.Route]:
    """The task log's route."""
    return [webapp2.Route("/tasks/recent", RecentTasksHandler, methods=["GET"])]


class RecentTasksHandler(JsonHandler):
    """Lists this process's latest task outcomes, newest first."""

    def get(self) -> None:
        if not (self.services.settings.demo_mode or require_admin(self)):
            return None
        limit = limit_param(self.request, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        self.send_json(200, {"tasks": tasklog.recent(limit)})
