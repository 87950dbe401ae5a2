"""The App Engine entry point (``gunicorn main:app``): the routes and their wiring.

Each line of ``ROUTE_GROUPS`` is a handler module's ``routes(services)``; add a group of
routes with one more line. The configuration is read once, here: a missing or malformed
variable stops the start-up with a message naming it.
"""

from handlers import demo, outbox, parked, push, pusher_endpoints, recent_tasks, warmup, worker
from handlers.application import create_app
from settings import Settings

ROUTE_GROUPS = (
    worker.routes,  # first: the hottest path matches at once
    push.routes,
    parked.routes,
    outbox.routes,  # /cron/outbox-sweep
    recent_tasks.routes,
    warmup.routes,
    pusher_endpoints.routes,  # /pusher/auth, /pusher/user-auth, /pusher/webhooks, /pusher/events/...
    demo.routes,  # the demo page at / and its static files
)

app = create_app(Settings.from_env(), ROUTE_GROUPS)
