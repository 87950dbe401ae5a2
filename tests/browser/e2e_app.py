"""Test-only: ``main.app`` plus the test page, served by gunicorn
(``tests.browser.e2e_app:app``) for the end-to-end browser test."""

from main import app
from tests.browser.pages import page_routes

for route in page_routes():
    app.router.add(route)
