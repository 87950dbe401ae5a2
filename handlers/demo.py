"""The demo page at ``/``: a realtime lobby showing events travel from ``POST /push`` through
the queue and the worker to pusher-js in the browser (static files; pusher-js from npm).
"""

from __future__ import annotations

import json
import mimetypes
import re
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import webapp2
from webob import Response

from handlers.body_limit import read_body
from handlers.demo_auth import LOBBY_CHANNEL, MESSAGE_EVENT, USER_COOKIE, USER_HEADER, demo_user
from handlers.errors import BodyTooLarge, Refused, error_answer
from settings import Settings

if TYPE_CHECKING:
    from handlers.application import Services

ROOT = Path(__file__).resolve().parents[1]
STATIC_DIR = ROOT / "static"
VENDOR_FILES = {"pusher.min.js": ROOT / "node_modules" / "pusher-js" / "dist" / "web" / "pusher.min.js"}

USER_COOKIE_MAX_AGE = 30 * 24 * 3600
#: A name is a presence and Pusher user id: a short run of the characters safe in both.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,24}")
_PUSHER_API_HOST = re.compile(r"api(?:-([a-z0-9-]+))?\.pusher(?:app)?\.com")  # Pusher's own service
_FILE_NAME = r"<name:[A-Za-z0-9_-][A-Za-z0-9_.-]*>"
#: The control path of ``scripts/demo_fault_proxy.py``, which `make dev` puts in front of soketi.
FAULT_PROXY_PATH = "/demo-fault-proxy/mode"
OUTAGE_MODES = ("off", "outage", "permanent")
FAULT_PROXY_TIMEOUT = 5.0


def routes(services: Services) -> list[webapp2.Route]:
    """The demo's routes (the page, its configuration, the visitor's name and static files),
    only with ``DEMO_MODE=1``: the demo authorizer it relies on trusts a cookie."""
    if not services.settings.demo_mode:
        return []
    config = browser_config(services.settings)
    return [
        webapp2.Route("/", demo_page, methods=["GET"]),
        webapp2.Route("/demo/config.json", partial(demo_config, config), methods=["GET"]),
        webapp2.Route(
            "/demo/name", partial(choose_name, services.settings.max_request_bytes), methods=["POST"]
        ),
        webapp2.Route(
            "/demo/outage",
            partial(simulate_outage, fault_proxy_url(services.settings)),
            methods=["GET", "POST"],
        ),
        webapp2.Route(f"/static/vendor/{_FILE_NAME}", vendor_file, methods=["GET"]),
        webapp2.Route(f"/static/{_FILE_NAME}", static_file, methods=["GET"]),
    ]


def browser_config(settings: Settings) -> dict[str, Any]:
    """What pusher-js needs to reach the configured Pusher (or soketi), and the demo's names."""
    pusher = settings.pusher
    config: dict[str, Any] = {
        "key": pusher.key,
        "forceTLS": pusher.ssl,
        "channel": LOBBY_CHANNEL,
        "event": MESSAGE_EVENT,
        "authEndpoint": "/pusher/auth",
        "pushPath": f"/push/{LOBBY_CHANNEL}/{MESSAGE_EVENT}",
        "tasksPath": "/tasks/recent",
        "userHeader": USER_HEADER,  # the page names its tab's user with it
    }
    hosted = _PUSHER_API_HOST.fullmatch(pusher.host or "")
    if pusher.cluster or hosted or not pusher.host:
        config["cluster"] = pusher.cluster or (hosted and hosted.group(1)) or "mt1"
    else:  # a self-hosted server such as soketi: its websocket is on the API's host and port
        port = pusher.port or (443 if pusher.ssl else 80)
        config.update(wsHost=pusher.host, wsPort=port, wssPort=port)
    return config


def fault_proxy_url(settings: Settings) -> str:
    """Where the demo fault proxy would answer: on the configured Pusher's host and port."""
    pusher = settings.pusher
    scheme = "https" if pusher.ssl else "http"
    port = pusher.port or (443 if pusher.ssl else 80)
    return f"{scheme}://{pusher.host or 'api.pusherapp.com'}:{port}{FAULT_PROXY_PATH}"


def simulate_outage(proxy_url: str, request: webapp2.Request) -> Response:
    """``GET``: the fault proxy's mode. ``POST`` form field ``mode`` (off, outage: Pusher
    answers 503 and tasks are retried, permanent: 400 and tasks are parked) arms it."""
    data = None
    if request.method == "POST":
        mode = request.POST.get("mode", "")
        if mode not in OUTAGE_MODES:
            return _error(400, f"mode is one of {', '.join(OUTAGE_MODES)}")
        data = mode.encode()
    try:
        with urllib.request.urlopen(proxy_url, data=data, timeout=FAULT_PROXY_TIMEOUT) as answer:
            return _json(200, json.loads(answer.read()))
    except (OSError, ValueError) as exc:  # no proxy there: a real Pusher, or the proxy is down
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return _error(
            409, f"no demo fault proxy answers in front of Pusher ({reason}); `make dev` starts one"
        )


def demo_page(request: webapp2.Request) -> Response:
    """The lobby page."""
    return _file_response(STATIC_DIR / "demo.html")


def demo_config(config: dict[str, Any], request: webapp2.Request) -> Response:
    """The browser configuration plus the visitor's name (from the ``X-Demo-User`` header, else
    the ``user`` cookie: the name this browser chose last)."""
    return _json(200, {**config, "user": demo_user(request)})


def choose_name(max_body_bytes: int, request: webapp2.Request) -> Response:
    """Form field ``name``: checked, then set as the ``user`` cookie the demo authorizer reads
    when no ``X-Demo-User`` header names the tab's user (the page keeps its name per tab).
    A body above ``max_body_bytes`` gets 413 before it is read."""
    try:
        read_body(request, max_body_bytes)
    except BodyTooLarge as exc:
        return _error(413, str(exc))
    name = request.POST.get("name", "").strip()
    if not NAME_PATTERN.fullmatch(name):
        return _error(400, "a name is 1 to 24 letters, digits, '-' or '_'")
    response = _json(200, {"user": name})
    response.set_cookie(USER_COOKIE, name, max_age=USER_COOKIE_MAX_AGE, path="/", samesite="lax")
    return response


def static_file(request: webapp2.Request, name: str) -> Response:
    """A file of ``static/``."""
    return _file_response(STATIC_DIR / name)


def vendor_file(request: webapp2.Request, name: str) -> Response:
    """A browser library from ``node_modules`` (installed by ``npm ci``)."""
    path = VENDOR_FILES.get(name)
    if path is None:
        return _error(404, f"no vendor file {name!r}")
    if not path.is_file():
        return _error(404, f"{path.relative_to(ROOT)} is missing: run `npm ci`")
    return _file_response(path)


def _file_response(path: Path) -> Response:
    if not path.is_file():
        return _error(404, f"no file {path.name!r}")
    content_type, _ = mimetypes.guess_type(path.name)
    response = Response(body=path.read_bytes(), content_type=content_type or "application/octet-stream")
    response.cache_control = "no-cache"  # a page under development: always the current file
    return response


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status=status, json_body=body)


def _error(status: int, message: str) -> Response:
    status, headers, body = error_answer(Refused(message, status))
    return Response(status=status, headerlist=headers, body=body)
