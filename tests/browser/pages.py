"""The channel auth test page and the npm scripts it loads (pusher-js, pusher-js-auth),
as webapp2 routes under ``/test-page/`` (clear of the app's own routes)."""

from __future__ import annotations

from urllib.parse import urlencode

import webapp2

from tests.support.processes import ROOT

PAGE_PATH = "/test-page/channel-auth.html"
FILES = {
    PAGE_PATH: (ROOT / "tests/browser/channel_auth.html", "text/html"),
    "/test-page/pusher.min.js": (ROOT / "node_modules/pusher-js/dist/web/pusher.min.js", "text/javascript"),
    "/test-page/pusher-auth.js": (ROOT / "node_modules/pusher-js-auth/lib/pusher-auth.js", "text/javascript"),
}


def serve_file(request: webapp2.Request) -> webapp2.Response:
    path, content_type = FILES[request.path]
    response = webapp2.Response(path.read_bytes())
    response.content_type = content_type
    return response


def page_routes() -> list[webapp2.Route]:
    return [webapp2.Route(path, serve_file, methods=["GET"]) for path in FILES]


def page_url(
    base_url: str, *, key: str, ws_port: int, room: str, user: str | None = None, batch: bool = False
) -> str:
    """The page subscribing to ``private-<room>`` and ``presence-<room>`` as ``user``."""
    query = {"key": key, "wsPort": ws_port, "room": room}
    query.update({"user": user} if user else {})
    query.update({"batch": "1"} if batch else {})
    return f"{base_url}{PAGE_PATH}?{urlencode(query)}"
