"""The RSGI bridge (handlers/rsgi_bridge.py) under granian's RSGI interface: the environ a
WSGI app gets is what PEP 3333 and WebOb expect, and the WSGI protocol is kept."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from handlers.rsgi_bridge import RsgiBridge
from pushqueue import logs
from tests.support.appserver import AppServer

ECHO = (
    "granian --interface rsgi --host 127.0.0.1 --port $PORT --workers 1 --no-ws"
    " tests.support.environ_echo:rsgi_app"
)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[AppServer]:
    with AppServer({}, command=ECHO, threads=None, workers=None, name="environ-echo") as server:
        yield server


def test_path_query_and_body_reach_the_app_as_pep_3333_and_webob_read_them(echo_server):
    answer = echo_server.client.post(
        "/a%2Fb/caf%C3%A9?x=1&x=2&y=%C3%A9", content=b'{"n": 1}', headers={"Content-Type": "application/json"}
    )
    seen = answer.json()
    assert (b"x-echo", "é".encode()) in answer.headers.raw  # granian sends header text as UTF-8
    assert seen["environ"] == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a/b/café".encode().decode("latin-1"),  # percent-decoded bytes as latin-1
        "QUERY_STRING": "x=1&x=2&y=%C3%A9",
        "RAW_URI": "/a/b/caf%C3%A9?x=1&x=2&y=%C3%A9",  # rebuilt from RSGI's decoded path
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "8",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
    }
    assert seen["path_info"] == "/a/b/café"
    assert seen["query"] == {"x": ["1", "2"], "y": "é"}
    assert seen["body"] == '{"n": 1}'


def test_repeated_headers_are_joined_and_underscored_names_dropped(echo_server):
    headers = [("X-Twice", "one"), ("X-Twice", "two"), ("X_AppEngine_QueueName", "forged")]
    http = echo_server.client.get("/h", headers=headers).json()["http"]
    assert http["HTTP_X_TWICE"] == "one, two"
    assert "HTTP_X_APPENGINE_QUEUENAME" not in http  # would pass for App Engine's own header
    assert "CONTENT_LENGTH" not in http


def test_a_path_whose_escapes_are_not_utf8_is_refused_before_the_app(echo_server):
    """granian hands RSGI apps the path decoded, undecodable bytes as U+FFFD: such a path is
    refused, as the app refuses any path that is not UTF-8."""
    answer = echo_server.client.get("/worker/push/a%FFb/ev")
    assert answer.status_code == 400
    assert answer.json() == {"error": "the URL path is not UTF-8 once percent-decoded"}


def test_header_values_that_are_not_utf8_never_reach_the_app(echo_server):
    headers = [("X-Latin", "caf\xe9".encode("latin-1")), ("X-Plain", b"ok")]
    http = echo_server.client.get("/h", headers=headers).json()["http"]
    assert http["HTTP_X_PLAIN"] == "ok"
    assert "HTTP_X_LATIN" not in http  # dropped by granian, so never misread


class Headers(dict):
    """RSGI's headers: ``items()`` of text names and values."""


class Protocol:
    """An RSGI HTTP protocol with a whole body to give, recording the answer."""

    def __init__(self, body: bytes):
        self.body, self.answer = body, None

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, headers, body)


GET_SCOPE = SimpleNamespace(
    proto="http",
    method="GET",
    path="/",
    query_string="",
    server="127.0.0.1:80",
    client="127.0.0.1:1234",
    scheme="http",
    http_version="1.1",
    headers=Headers(),
)


def call(app: RsgiBridge, body: bytes = b"") -> tuple[int, list[tuple[str, str]], bytes]:
    """What ``app`` answers to ``GET /`` (with ``body``)."""
    scope = SimpleNamespace(**{**vars(GET_SCOPE), "headers": Headers({"content-length": str(len(body))})})
    protocol = Protocol(body)
    asyncio.run(app.__rsgi__(scope, protocol))
    assert protocol.answer is not None
    return protocol.answer


class LateBody(Protocol):
    """A body that arrives ``delay`` seconds after it is asked for (never: ``None``)."""

    def __init__(self, body: bytes, delay: float | None):
        super().__init__(body)
        self.delay = delay

    async def __call__(self) -> bytes:
        await asyncio.sleep(3600 if self.delay is None else self.delay)
        return self.body


def post(bridge: RsgiBridge, protocol: Protocol, proven: bool) -> Any:
    """``bridge`` serving a POST of ``protocol``'s body, from a proven caller or not."""
    headers = Headers({"content-length": str(len(protocol.body))})
    if proven:
        headers["x-proven"] = "1"
    scope = SimpleNamespace(**{**vars(GET_SCOPE), "method": "POST", "headers": headers})
    return bridge.__rsgi__(scope, protocol)


def test_proven_bodies_wait_for_a_slot_and_unproven_ones_are_refused_at_once():
    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    bridge = RsgiBridge(
        app,
        threads=1,
        body_timeout=1,
        max_body_bytes=10,
        proven=lambda environ: "HTTP_X_PROVEN" in environ,
        proven_bodies=1,
        unproven_bodies=1,
    )
    slow_proven, waiting_proven = LateBody(b"a", 0.3), LateBody(b"b", 0)
    slow_unproven, refused = LateBody(b"c", None), LateBody(b"d", 0)

    async def attack() -> None:
        first = asyncio.ensure_future(post(bridge, slow_proven, proven=True))
        held = asyncio.ensure_future(post(bridge, slow_unproven, proven=False))
        await asyncio.sleep(0.05)  # both slots taken
        await post(bridge, refused, proven=False)
        assert refused.answer[0] == 503  # at once, the proven caller's slot untouched
        await asyncio.gather(first, post(bridge, waiting_proven, proven=True), held)

    asyncio.run(attack())
    assert (slow_proven.answer[0], waiting_proven.answer[0]) == (200, 200)  # waited its turn
    assert slow_unproven.answer[0] == 408
    assert ("Retry-After", "1") in refused.answer[1] and ("Connection", "close") in refused.answer[1]
    assert json.loads(refused.answer[2]) == {"error": "busy: too many bodies from unproven callers at once"}


def test_a_proven_body_that_gets_no_slot_in_time_is_503():
    def slow_app(environ, start_response):
        time.sleep(0.6)  # holds the only slot past the next request's deadline
        start_response("200 OK", [])
        return [b"ok"]

    bridge = RsgiBridge(
        slow_app, threads=2, body_timeout=0.3, max_body_bytes=10, proven=lambda environ: True, proven_bodies=1
    )
    holder, waiting = LateBody(b"a", 0), LateBody(b"b", 0)

    async def attack() -> None:
        held = asyncio.ensure_future(post(bridge, holder, proven=True))
        await asyncio.sleep(0.05)
        await asyncio.gather(held, post(bridge, waiting, proven=True))

    asyncio.run(attack())
    assert (holder.answer[0], waiting.answer[0]) == (200, 503)
    assert json.loads(waiting.answer[2]) == {"error": "busy: no request slot freed in time"}


class ClosingBody:
    """A WSGI iterable that records being closed."""

    def __init__(self, chunks: list[bytes]):
        self.chunks, self.closed = chunks, False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


def test_the_iterable_is_sent_then_closed_and_an_error_page_replaces_the_answer():
    body = ClosingBody([b"part one, ", b"part two"])

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return body

    status, _, answer = call(RsgiBridge(app, threads=1, body_timeout=5, max_body_bytes=10))
    assert status == 500
    assert answer == b"part one, part two"
    assert body.closed


def test_the_write_callable_says_it_is_not_supported_in_the_log_and_answers_500(caplog):
    def app(environ, start_response):
        start_response("200 OK", [])("old style")
        return []

    logs.LOGGER.addHandler(caplog.handler)  # whether or not logs.configure() ran in this process
    try:
        status, _, answer = call(RsgiBridge(app, threads=1, body_timeout=5, max_body_bytes=10))
    finally:
        logs.LOGGER.removeHandler(caplog.handler)
    assert status == 500
    assert json.loads(answer) == {"error": "internal error"}
    assert "the write() callable of start_response is not supported" in caplog.text


def test_an_underscored_queue_header_proves_nothing_on_app_engine(soketi, datastore, subscriber, pusher):
    """With ``GAE_ENV=standard`` the worker trusts ``X-AppEngine-QueueName`` (the front end
    strips it from outside requests); ``X_AppEngine_QueueName`` must not pass for it, as it
    does under granian's WSGI interface (``HTTP_X_APPENGINE_QUEUENAME``)."""
    subscriber.subscribe("underscored")
    env = {"PUSHER_URL": soketi.url, "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "", "GAE_ENV": "standard"}
    with AppServer({**env, **datastore.app_env()}, name="app-underscored") as app:
        forged = {"X_AppEngine_QueueName": "pusher", "X_AppEngine_TaskName": "forged"}
        answer = app.client.post("/worker/push/underscored/ev", json={"n": 1}, headers=forged)
        assert answer.status_code == 403, answer.text
    pusher.trigger("underscored", "sentinel", {})
    subscriber.event("sentinel", "underscored", timeout=30)
    assert [m for m in subscriber.events if m.get("channel") == "underscored"] == []
