"""``GET /tasks/recent?limit=50``: this process's latest task outcomes (see
:mod:`pushqueue.tasklog`), newest first, as ``{"tasks": [...]}``.

Served when ``DEMO_MODE`` is on (the demo page shows it) or to an App Engine admin:
channel names can say who a user is.
"""

from __future__ import annotations

import webapp2

from handlers.base import JsonHandler, is_admin
from pushqueue import tasklog
from settings import Settings

MAX_LIMIT = tasklog.CAPACITY


def routes(settings: Settings) -> list[webapp2.Route]:
    return [webapp2.Route("/tasks/recent", RecentTasksHandler, methods=["GET"])]


class RecentTasksHandler(JsonHandler):
    def get(self) -> None:
        if not (self.services.settings.demo_mode or is_admin(self.request)):
            return self.send_error(403, "the task log is shown in DEMO_MODE or to administrators")
        text = self.request.GET.get("limit", "50")
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            return self.send_error(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        self.send_json(200, {"tasks": tasklog.recent(int(text))})
