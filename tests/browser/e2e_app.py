"""Test-only: ``main.app`` plus the Pusher endpoints and the test page, served by gunicorn
(``tests.browser.e2e_app:app``) for the end-to-end browser test."""

from handlers import pusher_endpoints
from main import app
from tests.browser.pages import page_routes

for route in [*pusher_endpoints.routes(app.services.settings), *page_routes()]:
    app.router.add(route)
