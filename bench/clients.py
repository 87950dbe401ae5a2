"""The contenders: pusherlib, the official ``pusher`` library, and wrk with a pre-signed request."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

import pusher as official
from google.auth.credentials import AnonymousCredentials
from google.cloud import ndb

from pusherlib import Pusher
from pusherlib.signing import sign_request
from pusherlib.transports.http import HTTPTransport
from tests.support.soketi import Soketi

CHANNEL = "bench"
EVENT = "bench-event"
DATA = {"message": "hello from the benchmark", "sequence": 12345}
# Requests in flight in the fan-out benchmarks (pusherlib's default per host).
IN_FLIGHT = 16


def ours(server: Soketi, max_connections: int | None = None) -> Pusher:
    """pusherlib, configured from the server's URL (``max_connections``: in flight at most)."""
    transport = HTTPTransport(max_idle_per_host=max_connections) if max_connections else None
    return Pusher.from_url(server.url, transport=transport)


def theirs(server: Soketi) -> official.Pusher:
    """The official library, pointed at the same server."""
    return official.Pusher(
        app_id=server.app_id,
        key=server.key,
        secret=server.secret,
        host="127.0.0.1",
        port=server.port,
        ssl=False,
    )


@cache
def _ndb_client() -> ndb.Client:
    return ndb.Client(project="bench", credentials=AnonymousCredentials())


@contextmanager
def ndb_context() -> Iterator[None]:
    """A google-cloud-ndb context (no Datastore needed) for ``*_async`` calls: one a request,
    from one client a process, as in an App Engine app."""
    with _ndb_client().context():
        yield


def event_body(data: str) -> bytes:
    """The body of a ``POST /events`` carrying ``data`` to the bench channel."""
    return json.dumps({"name": EVENT, "channels": [CHANNEL], "data": data}).encode()


def batch_body(size: int) -> bytes:
    """The body of a ``POST /batch_events`` with ``size`` events."""
    event = {"channel": CHANNEL, "name": EVENT, "data": json.dumps(DATA)}
    return json.dumps({"batch": [event] * size}).encode()


class Wrk:
    """wrk replaying one pre-signed request to soketi: the server's limit."""

    def __init__(self, server: Soketi, workdir: Path):
        self.server = server
        self.script = workdir / "wrk.lua"

    def _sign(self, endpoint: str, body: bytes) -> str:
        path = f"/apps/{self.server.app_id}/{endpoint}"
        params = sign_request(
            self.server.key, self.server.secret.encode(), "POST", path, {}, body, int(time.time())
        )
        return f"http://127.0.0.1:{self.server.port}{path}?{urlencode(params)}"

    @staticmethod
    def check(url: str, body: bytes) -> None:
        """soketi answers a refused signature with HTTP 200: make sure the request is accepted."""
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        if answer != {"ok": True}:
            raise RuntimeError(f"soketi refused the pre-signed request: {answer}")

    def run(
        self, connections: int, body: bytes | None = None, endpoint: str = "events", seconds: int = 1
    ) -> dict[str, float]:
        """The server's answers to a pre-signed ``POST`` with ``connections`` in flight."""
        body = event_body(json.dumps(DATA)) if body is None else body
        url = self._sign(endpoint, body)
        self.check(url, body)
        return load(url, body, {"Content-Type": "application/json"}, connections, seconds, self.script)


def load(
    url: str, body: bytes, headers: dict[str, str], connections: int, seconds: int, script: Path
) -> dict[str, float]:
    """wrk POSTing ``body`` to ``url`` for ``seconds``: requests/s, requests, latencies (µs).

    Any answer that is not 2xx stops the benchmark: a figure must count only successes.
    """
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body.decode()}]==]"]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    argv = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-s", str(script), url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    return {
        "rate": float(_field(r"Requests/sec:\s+([\d.]+)", output)),
        "requests": int(_field(r"(\d+) requests in", output)),
        "mean_us": _micros(_field(r"^\s+Latency\s+(\S+)", output)),
        "p50_us": _micros(_field(r"^\s+50%\s+(\S+)", output)),
        "p99_us": _micros(_field(r"^\s+99%\s+(\S+)", output)),
    }


def _field(pattern: str, output: str) -> str:
    found = re.search(pattern, output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return found[1]


def _micros(text: str) -> float:
    for unit, factor in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise ValueError(f"not a wrk duration: {text!r}")
