"""Test-only: ``main.app`` plus the test page, served as the entrypoint serves ``main``
(``tests.browser.e2e_app:rsgi_app``, the same app behind the bridge; ``:app`` for gunicorn)
for the end-to-end browser test."""

from main import app, rsgi_app
from tests.browser.pages import page_routes

for route in page_routes():
    app.router.add(route)

__all__ = ["app", "rsgi_app"]
