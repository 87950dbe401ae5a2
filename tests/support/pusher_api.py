"""A small server shaped like Pusher's HTTP API, for what soketi does differently.

soketi ignores ``info`` on triggers; Pusher answers it with per-channel counts. This
server checks each request the way Pusher does (key, timestamp, ``body_md5``, and the
signature computed with the official library's ``pusher.signature.sign``), refuses with
401 otherwise, and answers ``POST /events`` and ``POST /batch_events`` as Pusher's API
reference says: ``{"channels": {name: {"subscription_count", "user_count"}}}`` and
``{"batch": [{...}, ...]}``, counts taken from ``counts``. ``user_count`` is only for
presence channels (400 otherwise).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pusher.signature import sign


class PusherShapedServer:
    """``with PusherShapedServer("1", "key", "secret", counts={...}) as api: api.port``."""

    def __init__(self, app_id: str, key: str, secret: str, counts: dict[str, dict[str, int]]):
        self.app_id, self.key, self.secret, self.counts = app_id, key, secret, counts
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = server.answer(self.path, body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]

    def __enter__(self) -> PusherShapedServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Check the signature, then answer like Pusher."""
        parts = urlsplit(target)
        params = dict(parse_qsl(parts.query))
        signature = params.pop("auth_signature", "")
        to_sign = "\n".join(["POST", parts.path, "&".join(f"{k}={params[k]}" for k in sorted(params))])
        if (
            params.get("auth_key") != self.key
            or abs(time.time() - int(params.get("auth_timestamp", 0))) > 600
            or params.get("body_md5") != hashlib.md5(body).hexdigest()
            or sign(self.secret, to_sign) != signature
        ):
            return 401, {"error": "Invalid signature"}
        request = json.loads(body)
        self.requests.append(request)
        if parts.path == f"/apps/{self.app_id}/events":
            counted = {name: self._counts(name, request.get("info")) for name in request["channels"]}
            if any(value is None for value in counted.values()):
                return 400, {"error": "user_count may only be requested for presence channels"}
            return 200, {"channels": counted} if request.get("info") else {}
        if parts.path == f"/apps/{self.app_id}/batch_events":
            batch = [self._counts(event["channel"], event.get("info")) for event in request["batch"]]
            if any(value is None for value in batch):
                return 400, {"error": "user_count may only be requested for presence channels"}
            return 200, {"batch": batch} if any(e.get("info") for e in request["batch"]) else {}
        return 404, {"error": "unknown path"}

    def _counts(self, channel: str, info: str | None) -> dict[str, int] | None:
        wanted = (info or "").split(",") if info else []
        if "user_count" in wanted and not channel.startswith("presence-"):
            return None
        known = self.counts.get(channel, {})
        return {name: known.get(name, 0) for name in wanted if name}
