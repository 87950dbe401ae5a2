"""``GET /cron/outbox-sweep``: queue the transactional events a crash left in the outbox.

Called every minute by App Engine's cron (``cron.yaml``). Only cron may call it: App
Engine sets ``X-Appengine-Cron: true`` on cron requests and removes it from outside ones,
which proves something only where ``GAE_ENV=standard``; in local development
(``ALLOW_UNVERIFIED_LOCAL_REQUESTS=1``) anyone on the machine may call it. Everything else
gets 403. Answers how many entries it found had all their tasks queued, had some parked
(refused by the queue for good: listed by ``/admin/parked``) and the rest queued, or were
left for its next run (a queue that cannot be reached now, or Datastore failing mid-sweep):
``{"queued": n, "parked": n, "left": n}``; 503 when Datastore cannot be read at all (cron
tries again at its next run).
Without Datastore (parked events in memory) there is no outbox: all three are 0.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import webapp2

from handlers.base import JsonHandler
from pushqueue import QueueError, logs
from pushqueue.outbox import Swept

if TYPE_CHECKING:
    from handlers.application import Services

CRON_HEADER = "X-Appengine-Cron"
SWEEP_PATH = "/cron/outbox-sweep"


def routes(services: Services) -> list[webapp2.Route]:
    """The sweeper's route."""
    return [webapp2.Route(SWEEP_PATH, OutboxSweepHandler, methods=["GET"])]


class OutboxSweepHandler(JsonHandler):
    """Runs :meth:`pushqueue.outbox.Outbox.sweep` for App Engine's cron."""

    def dispatch(self) -> Any:
        settings = self.services.settings
        from_cron = settings.app_engine_standard and self.request.headers.get(CRON_HEADER) == "true"
        if not (from_cron or settings.local_development):
            logs.log(logging.WARNING, "outbox sweep refused: not from App Engine's cron", path=SWEEP_PATH)
            return self.send_error(403, "only App Engine's cron may call this")
        return super().dispatch()

    def get(self) -> None:
        outbox = self.services.events.outbox
        try:
            swept = outbox.sweep() if outbox is not None else Swept()
        except QueueError as exc:
            return self.send_error(503, f"the outbox cannot be swept now: {exc}")
        self.send_json(200, asdict(swept))
