"""A WSGI app answering with what it was given, served through :mod:`handlers.rsgi_bridge`
(``tests.support.environ_echo:rsgi_app``): the bridge's environ as WebOb reads it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import webob

from handlers.rsgi_bridge import RsgiBridge

ENVIRON_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "RAW_URI",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "wsgi.url_scheme",
)


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    request = webob.Request(environ)
    seen = {
        "environ": {key: environ[key] for key in ENVIRON_KEYS if key in environ},
        "http": {key: value for key, value in environ.items() if key.startswith("HTTP_")},
        "path_info": request.path_info,
        "path_qs": request.path_qs,
        "query": request.GET.mixed(),
        "body": request.body.decode("latin-1"),
    }
    body = json.dumps(seen).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Echo", "é")])
    return [body]


rsgi_app = RsgiBridge(echo, threads=2, body_timeout=10, max_body_bytes=1024 * 1024)
