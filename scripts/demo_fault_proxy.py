"""The dev stack's switchable outage: a small TCP proxy in front of soketi.

`make dev` points the app (``PUSHER_URL``) and the demo page's websocket at this proxy, so the
demo page can show what the queue does while Pusher is unreachable, without stopping soketi.

* Websocket connections (``GET /app/...``) always pass through: the page stays connected.
* HTTP API requests pass through while the mode is ``off``. With ``outage`` each one gets
  503 after OUTAGE_DELAY seconds (the worker retries the task; the delay paces the Cloud Tasks
  emulator, which retries without backoff); with ``permanent`` each gets 400 (the worker
  parks it).
  Arming a mode closes the API connections already open, so that every later request is seen.
* ``GET /demo-fault-proxy/mode`` answers the mode; ``POST`` with the body ``off``, ``outage``
  or ``permanent`` sets it. The app's ``POST /demo/outage`` (``DEMO_MODE`` only) calls this.

Standard library only. Run: ``python scripts/demo_fault_proxy.py --port P --upstream-port U``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import socketserver
import sys
import threading
import time

HOST = "127.0.0.1"
CONTROL_PATH = "/demo-fault-proxy/mode"
MODES = {"off": None, "outage": (503, "Service Unavailable"), "permanent": (400, "Bad Request")}
MAX_HEAD_BYTES = 64 * 1024
MAX_CONTROL_BODY = 64
IDLE_TIMEOUT = 300.0  # a pass-through connection silent this long is closed
HEAD_TIMEOUT = 10.0
OUTAGE_DELAY = 1.0


class ProxyState:
    """The current mode and the open API connections (closed when a mode is armed)."""

    def __init__(self) -> None:
        self.mode = "off"
        self.lock = threading.Lock()
        self.api_connections: set[socket.socket] = set()

    def arm(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            open_connections, self.api_connections = self.api_connections, set()
        for connection in open_connections:
            _close(connection)


def read_head(connection: socket.socket) -> bytes | None:
    """The request head (up to the blank line, included) plus what followed it; None if too big."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_HEAD_BYTES:
            return None
    return data


def read_control_body(connection: socket.socket, head: bytes) -> bytes:
    """The control request's short body (by its Content-Length, at most MAX_CONTROL_BODY)."""
    headers, _, body = head.partition(b"\r\n\r\n")
    length = 0
    for line in headers.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = min(int(value), MAX_CONTROL_BODY)
    while len(body) < length and (chunk := connection.recv(MAX_CONTROL_BODY)):
        body += chunk
    return body[:length]


def answer(connection: socket.socket, status: int, reason: str, body: dict[str, str]) -> None:
    """One JSON response, then the connection is closed."""
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    connection.sendall(head.encode() + payload)


def pump(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes from ``source`` to ``target`` until either side closes."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(target)
        _close(source)


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


class ProxyHandler(socketserver.BaseRequestHandler):
    """One client connection: the control endpoint, a refused API request or a pass-through."""

    server: ProxyServer

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(HEAD_TIMEOUT)
        head = read_head(client)
        if head is None:
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ", 1)[0]
        state = self.server.state
        if path == CONTROL_PATH:
            return self.control(client, method, head)
        is_websocket = path.startswith("/app/")
        with state.lock:
            refusal = None if is_websocket else MODES[state.mode]
            if refusal is None and not is_websocket:
                state.api_connections.add(client)
        if refusal is not None:
            status, reason = refusal
            if status >= 500:
                time.sleep(OUTAGE_DELAY)
            return answer(client, status, reason, {"error": f"simulated by the demo fault proxy ({reason})"})
        try:
            upstream = socket.create_connection((HOST, self.server.upstream_port), timeout=HEAD_TIMEOUT)
        except OSError:
            return answer(client, 502, "Bad Gateway", {"error": "soketi is not answering"})
        client.settimeout(IDLE_TIMEOUT)
        upstream.settimeout(IDLE_TIMEOUT)
        upstream.sendall(head)
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)
        with state.lock:
            state.api_connections.discard(client)

    def control(self, client: socket.socket, method: str, head: bytes) -> None:
        state = self.server.state
        if method == "POST":
            mode = read_control_body(client, head).decode("latin-1").strip()
            if mode not in MODES:
                return answer(client, 400, "Bad Request", {"error": f"mode is one of {', '.join(MODES)}"})
            state.arm(mode)
            print(f"demo fault proxy: mode {mode}", flush=True)
        elif method != "GET":
            return answer(client, 405, "Method Not Allowed", {"error": "GET or POST"})
        answer(client, 200, "OK", {"mode": state.mode})


class ProxyServer(socketserver.ThreadingTCPServer):
    """The proxy on ``HOST:port`` in front of soketi on ``HOST:upstream_port``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, upstream_port: int) -> None:
        super().__init__((HOST, port), ProxyHandler)
        self.upstream_port = upstream_port
        self.state = ProxyState()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args(argv)
    with ProxyServer(args.port, args.upstream_port) as server:
        print(f"demo fault proxy on {HOST}:{args.port} -> soketi on {HOST}:{args.upstream_port}", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
