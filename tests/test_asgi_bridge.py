"""The ASGI bridge (handlers/asgi_bridge.py) under granian's ASGI interface: the environ a
WSGI app gets is what PEP 3333 and WebOb expect, and the WSGI protocol is kept."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from handlers.asgi_bridge import AsgiBridge
from pushqueue import logs
from tests.support.appserver import AppServer

ECHO = (
    "granian --interface asgi --host 127.0.0.1 --port $PORT --workers 1 --no-ws"
    " tests.support.environ_echo:asgi_app"
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
    assert (b"x-echo", "é".encode("latin-1")) in answer.headers.raw  # WSGI headers: latin-1
    assert seen["environ"] == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a/b/café".encode().decode("latin-1"),  # percent-decoded bytes as latin-1
        "QUERY_STRING": "x=1&x=2&y=%C3%A9",
        "RAW_URI": "/a%2Fb/caf%C3%A9?x=1&x=2&y=%C3%A9",  # as sent: %2F kept apart from /
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


def call(app: Any, scope: dict[str, Any], body: bytes = b"") -> list[dict[str, Any]]:
    """The messages ``app`` sends for one HTTP request (``scope`` completed)."""
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], **scope}
    asyncio.run(app(scope, receive, send))
    return sent


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

    sent = call(AsgiBridge(app, threads=1, body_timeout=5, max_body_bytes=10), {})
    assert sent[0]["status"] == 500
    assert b"".join(message.get("body", b"") for message in sent[1:]) == b"part one, part two"
    assert body.closed


def test_the_write_callable_says_it_is_not_supported_in_the_log_and_answers_500(caplog):
    def app(environ, start_response):
        start_response("200 OK", [])("old style")
        return []

    logs.LOGGER.addHandler(caplog.handler)  # whether or not logs.configure() ran in this process
    try:
        sent = call(AsgiBridge(app, threads=1, body_timeout=5, max_body_bytes=10), {})
    finally:
        logs.LOGGER.removeHandler(caplog.handler)
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {"error": "internal error"}
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
