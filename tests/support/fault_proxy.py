"""An HTTP/1.1 proxy placed between the worker and soketi that misbehaves on command.

Unlike :mod:`tests.support.fault_server` (a stub that answers by itself), the proxy
forwards each request to a real upstream (soketi) unless a fault is armed. Faults are
queued at run time, each for the next ``count`` requests (``count=None``: every request
until :meth:`clear`):

* ``Fault.answer(429)``: answer that status without forwarding (Pusher never saw it);
* ``Fault.slow(seconds)``: forward, then hold the answer for ``seconds`` (the upstream
  acted: a client that timed out and retries sends it twice);
* ``Fault.reset(after_forwarding=False)``: reset the connection (TCP RST), before or after
  the upstream saw the request.

A request the proxy cannot forward (upstream down) is answered with a reset, as a closed
port would be. The counters say what happened, and ``exchanges`` keeps each request the
upstream answered (what it acknowledged, even if the client never heard it)::

    with FaultProxy(soketi.port) as proxy:
        proxy.arm(Fault.answer(503), count=20)
        ...
        assert proxy.faults == 20
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass(frozen=True)
class Fault:
    """One kind of misbehaviour: ``kind`` is ``answer``, ``slow`` or ``reset``."""

    kind: str
    status: int = 0
    seconds: float = 0.0
    after_forwarding: bool = False

    @classmethod
    def answer(cls, status: int) -> Fault:
        return cls("answer", status=status)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", seconds=seconds)

    @classmethod
    def reset(cls, *, after_forwarding: bool = False) -> Fault:
        return cls("reset", after_forwarding=after_forwarding)


@dataclass(frozen=True)
class Exchange:
    """A request the upstream answered, and its answer."""

    method: str
    path: str
    body: bytes
    status: int
    answer: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the proxy's counters say what happened."""

    def _relay(self) -> None:
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = proxy.next_fault()
        if fault is not None and fault.kind == "answer":
            return self._answer(fault.status, b'{"error":"injected by the fault proxy"}')
        if fault is not None and fault.kind == "reset" and not fault.after_forwarding:
            return self._reset()
        try:
            status, headers, answer = proxy.forward(self.command, self.path, self.headers, body)
        except OSError:
            proxy.count("unreachable")
            return self._reset()
        if fault is not None and fault.kind == "reset":
            return self._reset()
        if fault is not None and fault.kind == "slow" and proxy.stopping.wait(fault.seconds):
            return self._reset()
        self._answer(status, answer, headers)

    do_GET = do_POST = _relay

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy


class FaultProxy:
    """Listens on ``127.0.0.1:port`` (a free one) and forwards to ``127.0.0.1:upstream_port``."""

    def __init__(self, upstream_port: int, upstream_timeout: float = 10):
        self.upstream_port, self.upstream_timeout = upstream_port, upstream_timeout
        self.stopping = threading.Event()
        self.counters = {"requests": 0, "forwarded": 0, "faults": 0, "unreachable": 0}
        self.last_request_at = time.monotonic()
        self.exchanges: list[Exchange] = []
        self._script: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._server = _ProxyServer(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def faults(self) -> int:
        return self.counters["faults"]

    def arm(self, fault: Fault, count: int | None = None) -> None:
        """Apply ``fault`` to ``count`` more requests, after those already armed
        (``None``: to every request until :meth:`clear`)."""
        with self._lock:
            if count is None:
                self._always = fault
            else:
                self._script.extend([fault] * count)

    def clear(self) -> None:
        with self._lock:
            self._script.clear()
            self._always = None

    def reset_counters(self) -> None:
        """Start counting again (a test sharing the proxy with others counts its own)."""
        with self._lock:
            self.counters = dict.fromkeys(self.counters, 0)
            self.exchanges = []

    def armed(self) -> int:
        """How many armed faults are still waiting for a request."""
        with self._lock:
            return len(self._script)

    def next_fault(self) -> Fault | None:
        with self._lock:
            self.counters["requests"] += 1
            self.last_request_at = time.monotonic()
            fault = self._script.popleft() if self._script else self._always
            if fault is not None:
                self.counters["faults"] += 1
            return fault

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def forward(
        self, method: str, path: str, headers: object, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream on a fresh connection; return its answer."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.upstream_port, timeout=self.upstream_timeout
        )
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}  # type: ignore[attr-defined]
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = response.read()
            with self._lock:
                self.counters["forwarded"] += 1
                self.exchanges.append(Exchange(method, path, body, response.status, answer))
            return response.status, response.getheaders(), answer
        except http.client.HTTPException as exc:
            raise OSError(str(exc)) from exc
        finally:
            connection.close()

    def wait_quiet(self, seconds: float, timeout: float = 30) -> None:
        """Wait until no request has arrived for ``seconds`` (a paused queue's last pass ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() - self.last_request_at < seconds:
            if time.monotonic() > deadline:
                raise TimeoutError(f"requests kept coming for {timeout} s")
            time.sleep(0.05)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
