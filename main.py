"""The App Engine entry point: the routes and their wiring. ``app`` is the WSGI app
(``gunicorn main:app``), ``rsgi_app`` the same app behind :mod:`handlers.rsgi_bridge`
(``app.yaml``'s granian). Your own routes: ``EXTRA_ROUTE_MODULES`` (:mod:`handlers.extra_routes`).
"""

import sys

from handlers import demo, extra_routes, outbox, parked, push, pusher_endpoints, recent_tasks, warmup, worker
from handlers.application import create_app
from handlers.rsgi_bridge import RsgiBridge
from settings import ConfigError, Settings

APP_ROUTE_GROUPS = (
    worker.routes,  # first: the hottest path matches at once
    push.routes,
    parked.routes,
    outbox.routes,  # /cron/outbox-sweep
    recent_tasks.routes,
    warmup.routes,
    pusher_endpoints.routes,  # /pusher/auth, /pusher/user-auth, /pusher/webhooks, /pusher/events/...
    demo.routes,  # the demo page at / and its static files
)
try:
    SETTINGS = Settings.from_env()
    ROUTE_GROUPS = (*APP_ROUTE_GROUPS, *extra_routes.route_groups(SETTINGS.extra_route_modules))  # yours last
    app = create_app(SETTINGS, ROUTE_GROUPS)
except ConfigError as exc:  # said once, without a traceback: the message names every variable
    sys.exit(f"cannot start: {exc}")
rsgi_app = RsgiBridge(
    app,
    loop_routes=app.loop_routes,
    threads=SETTINGS.app_threads,
    body_timeout=SETTINGS.body_read_timeout,
    max_body_bytes=max(worker.MAX_TASK_BODY_BYTES, SETTINGS.max_request_bytes),
    proven=app.proves_itself,
    proven_bodies=SETTINGS.proven_requests,
    unproven_bodies=SETTINGS.unproven_bodies,
)
