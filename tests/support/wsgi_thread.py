"""Serving a WSGI app on a real HTTP server (wsgiref, one thread per request) in a thread,
so soketi's webhooks and a real browser can reach it::

    with WSGIThread(app) as server:
        ...  # server.url == "http://127.0.0.1:<free port>"
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .processes import free_port


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean: the assertions say what happened."""


class WSGIThread:
    """``app`` served on ``127.0.0.1`` at a free port until :meth:`stop`."""

    def __init__(self, app: Callable[..., Any], port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server(
            "127.0.0.1", self.port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> WSGIThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> WSGIThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
