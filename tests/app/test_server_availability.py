"""The server stays available to the queue and to proven publishers, through app.yaml's
entrypoint (granian RSGI, ``main:rsgi_app``), the Cloud Tasks emulator and soketi: silent
sockets, HTTP/2 prefaces and prior knowledge, idle connections, anonymous slow bodies;
anonymous callers' errors are JSON 4xx, and they are rate-limited by the client's address.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from typing import Any

import httpx
import pytest

from tests.app.test_server import F1_MEMORY_KIB, option
from tests.support.appserver import AppServer, Stack, running_stack, tree_rss_kib
from tests.support.credentials import PUBLISHER_HEADERS

pytestmark = pytest.mark.emulator

QUEUE_HEADERS = {"X-AppEngine-QueueName": "pusher", "X-AppEngine-TaskName": "availability"}
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
AUTH_FORM = b"socket_id=1.2&channel_name=private-a"
PROMPT = 5  # seconds: "answered within a few seconds"
SLOW_BODY_BYTES = 1_000_000


@pytest.fixture(scope="module")
def stack(soketi) -> Iterator[Stack]:
    with running_stack(
        {"PUSHER_URL": soketi.url}, workers=None, threads=None, name="app-availability"
    ) as stack:
        yield stack


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port))


def closed_by_server(sock: socket.socket, within: float) -> bytes:
    """What the server sent before closing ``sock`` (raises ``TimeoutError`` if it kept it
    open longer than ``within`` seconds)."""
    sock.settimeout(within)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def proven_callers_are_answered(stack: Stack, count: int = 5) -> None:
    """``count`` queue tasks and ``count`` token publishes, each answered within ``PROMPT`` s."""
    with httpx.Client(base_url=stack.app.url, timeout=PROMPT, headers=PUBLISHER_HEADERS) as client:
        for number in range(count):
            task = client.post("/worker/push/availability/ev", json={"n": number}, headers=QUEUE_HEADERS)
            assert task.status_code == 200, task.text
            publish = client.post("/push/availability/ev", json={"n": number})
            assert publish.status_code == 202, publish.text


def test_silent_sockets_and_http2_prefaces_are_closed_at_the_header_deadline(stack):
    bound = int(option("--http1-header-read-timeout")) / 1000
    with closing(connect(stack.app.port)) as silent, closing(connect(stack.app.port)) as preface:
        preface.sendall(H2_PREFACE)
        started = time.monotonic()
        assert closed_by_server(silent, bound + PROMPT) == b""
        assert bound - 1 <= time.monotonic() - started  # held until the deadline, then closed
        assert closed_by_server(preface, bound + PROMPT) == b""  # no HTTP/2 SETTINGS frame


def test_http2_prior_knowledge_is_refused(stack):
    with closing(connect(stack.app.port)) as h2c:
        h2c.sendall(H2_PREFACE + H2_SETTINGS)
        assert closed_by_server(h2c, PROMPT) == b""  # refused at once: no stream can stall
    with httpx.Client(http1=True, timeout=PROMPT) as client:  # HTTP/1.1 is still served
        assert client.get(stack.app.url + "/_ah/warmup").status_code == 200


def test_queue_tasks_and_publishes_are_answered_while_80_idle_connections_are_held(stack):
    with ExitStack() as held:
        for _ in range(80):
            held.enter_context(closing(connect(stack.app.port)))
        time.sleep(0.5)  # all accepted, none has sent anything
        proven_callers_are_answered(stack)


class SlowAnonymousBodies:
    """``count`` connections posting ``path`` with no credential: each sends its headers
    (declaring a 1 MB body) and 64 KB of body at once, then one byte a second."""

    def __init__(self, held: ExitStack, port: int, count: int, path: str):
        self.stopped = threading.Event()
        self.refused_at_once = 0
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {SLOW_BODY_BYTES}\r\n\r\n"
        ).encode()
        self.sockets = [held.enter_context(closing(connect(port))) for _ in range(count)]
        for slow in self.sockets:
            slow.sendall(head + b" " * 65536)
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()
        held.callback(self.stop)

    def count_refused(self) -> int:
        """How many were refused before sending their body: answered 503, or reset by the
        server closing with their unread body (the rest are being read, or waiting)."""
        refused = 0
        for slow in self.sockets:
            slow.setblocking(False)
            try:
                refused += slow.recv(65536).startswith(b"HTTP/1.1 503")
            except BlockingIOError:  # nothing yet: its body is being read
                continue
            except ConnectionResetError:
                refused += 1
        return refused

    def _drip(self) -> None:
        open_sockets = list(self.sockets)
        while open_sockets and not self.stopped.wait(1):
            for slow in list(open_sockets):
                try:
                    slow.send(b" ")
                except OSError:  # refused or answered, and closed: that one is over
                    open_sockets.remove(slow)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)


def test_anonymous_slow_bodies_cannot_starve_queue_tasks_and_publishers(stack, capsys):
    """200 anonymous connections sending 1 MB webhook bodies slowly: proven callers are
    answered within a few seconds, the excess is refused at once, memory stays bounded."""
    assert stack.app.process is not None
    with ExitStack() as held:
        slow = SlowAnonymousBodies(held, stack.app.port, 200, "/pusher/webhooks")
        time.sleep(1)
        proven_callers_are_answered(stack)
        rss_kib = tree_rss_kib(stack.app.process.pid)
        refused = slow.count_refused()
        with capsys.disabled():
            print(f"\n200 slow anonymous bodies: {refused} refused at once, server RSS {rss_kib // 1024} MB")
        assert refused >= 200 - int(stack.app.env.get("UNPROVEN_BODIES", "32"))
        assert rss_kib < F1_MEMORY_KIB


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        (
            "/pusher/auth",
            "application/x-www-form-urlencoded; charset=nope",
            b"socket_id=1.2&channel_name=private-a",
        ),
        (
            "/pusher/auth",
            "application/x-www-form-urlencoded; charset=utf-16",
            b"socket_id=1.2&channel_name=private-a",
        ),
        ("/pusher/user-auth", "multipart/form-data", b"socket_id=1.2"),
        ("/pusher/auth", "multipart/form-data; boundary=x; charset=nope", b"--x--\r\n"),
        ("/push/availability/ev", "application/x-www-form-urlencoded; charset=utf-16", b"n=1"),
    ],
)
def test_form_bodies_that_cannot_be_read_are_400_in_json(stack, path, content_type, body):
    answer = stack.app.client.post(path, content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 400, answer.text
    assert "form" in answer.json()["error"]


def test_an_unknown_method_is_a_json_501(stack):
    answer = stack.app.client.request("BREW", "/")
    assert answer.status_code == 501
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"error": "this server serves no such method"}


def anonymous_publishes(server: AppServer, client_ips: list[str]) -> list[int]:
    """The statuses of anonymous publishes to a public channel, one per forwarded address."""
    with httpx.Client(base_url=server.url, timeout=PROMPT) as client:
        return [
            client.post("/push/public-news/ev", json={}, headers={"X-AppEngine-User-IP": ip}).status_code
            for ip in client_ips
        ]


def rate_limited_app(stack: Stack, datastore: Any, name: str, **env: str) -> AppServer:
    """The app with one anonymous publish a second per caller and anyone publishing on
    ``public-*``, queueing to ``stack``'s emulator, parking in ``datastore``."""
    return AppServer(
        {
            **stack.emulator.app_env(),
            "DATASTORE_EMULATOR_HOST": datastore.host,
            "PUSHER_URL": stack.app.env["PUSHER_URL"],
            "EXTRA_ROUTE_MODULES": "tests.support.public_channels",
            "PUSH_RATE_LIMIT": "1",
            "PUSH_RATE_BURST": "1",
            **env,
        },
        workers=None,
        threads=None,
        name=name,
    )


def test_on_app_engine_anonymous_callers_are_limited_by_app_engines_client_address(stack, datastore):
    deployed = {"GAE_ENV": "standard", "ALLOW_UNVERIFIED_LOCAL_REQUESTS": ""}
    with rate_limited_app(stack, datastore, "app-rate-gae", **deployed) as app:
        # Every request comes from the same front end (here: loopback); the client differs.
        assert anonymous_publishes(app, ["198.51.100.1", "198.51.100.2", "198.51.100.1"]) == [202, 202, 429]


def test_elsewhere_a_forged_client_address_changes_nothing(stack, datastore):
    with rate_limited_app(stack, datastore, "app-rate-local") as app:
        assert anonymous_publishes(app, ["198.51.100.1", "198.51.100.2"]) == [202, 429]
