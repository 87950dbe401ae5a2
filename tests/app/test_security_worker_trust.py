"""The worker trusts only what is proven, attacked from outside through the real gunicorn server.

* Off App Engine and without the local-development switch, forged ``X-AppEngine-*`` or
  ``X-CloudTasks-*`` headers get 403 and trigger nothing (a sentinel sent after them is
  the first event the subscriber sees).
* With ``GAE_ENV=standard`` (App Engine strips those headers from outside requests) the
  same task is delivered.
* A body larger than any task gets 413 without being read whole: declared (100 MB
  ``Content-Length``) or chunked, the worker process's peak memory stays far below it.
* Numbers in the queue's headers are ASCII digits or nothing: never a 500.
"""

from __future__ import annotations

import json
import selectors
import socket
from pathlib import Path

import pytest

from tests.support.appserver import AppServer, running_app

HUGE = 100 * 1024 * 1024
CHUNK = b"x" * (256 * 1024)
APP_ENGINE_TASK = {"X-AppEngine-QueueName": "pusher", "X-AppEngine-TaskName": "forged"}
CLOUD_TASKS_TASK = {"X-CloudTasks-QueueName": "pusher", "X-CloudTasks-TaskName": "forged"}


@pytest.fixture(scope="module")
def elsewhere(soketi, datastore):
    """The app as deployed on Cloud Run or a VM: no platform strips any header (parked events
    in Datastore, as deployed)."""
    env = {"PUSHER_URL": soketi.url, "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "", **datastore.app_env()}
    with running_app(env, name="app-elsewhere") as app:
        yield app


@pytest.fixture(scope="module")
def app_engine(soketi, datastore):
    """The app as App Engine standard runs it (``GAE_ENV=standard``)."""
    env = {
        "PUSHER_URL": soketi.url,
        "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "",
        "GAE_ENV": "standard",
        **datastore.app_env(),
    }
    with running_app(env, name="app-gae") as app:
        yield app


def assert_nothing_arrived_before_the_sentinel(subscriber, pusher, channel: str) -> None:
    pusher.trigger(channel, "sentinel", {})
    subscriber.event("sentinel", channel, timeout=10)
    assert [m for m in subscriber.events if m.get("channel") == channel] == []


@pytest.mark.parametrize(
    "forged",
    [
        APP_ENGINE_TASK,
        {**APP_ENGINE_TASK, "X-AppEngine-TaskExecutionCount": "99", "X-AppEngine-TaskRetryCount": "99"},
        {**APP_ENGINE_TASK, "X-AppEngine-QueueName": "pusher-parked"},
        CLOUD_TASKS_TASK,
        {**CLOUD_TASKS_TASK, **APP_ENGINE_TASK},
    ],
    ids=["queue name", "retry counts", "parked queue", "cloud tasks", "both"],
)
def test_off_app_engine_forged_queue_headers_are_refused(elsewhere, subscriber, pusher, forged):
    subscriber.subscribe("trust-forged")
    response = elsewhere.client.post("/worker/push/trust-forged/ev", json={"n": 1}, headers=forged)
    assert response.status_code == 403 and "OIDC" in response.json()["error"]
    batch = [{"channel": "trust-forged", "name": "ev", "data": "{}"}]
    assert elsewhere.client.post("/worker/batch", json=batch, headers=forged).status_code == 403
    assert_nothing_arrived_before_the_sentinel(subscriber, pusher, "trust-forged")


def test_on_app_engine_its_task_headers_are_believed(app_engine, subscriber):
    subscriber.subscribe("trust-gae")
    response = app_engine.client.post("/worker/push/trust-gae/ev", json={"n": 1}, headers=APP_ENGINE_TASK)
    assert response.json() == {"outcome": "delivered"}
    assert json.loads(subscriber.event("ev", "trust-gae", timeout=10)["data"]) == {"n": 1}


def test_on_app_engine_cloud_tasks_headers_without_a_token_are_refused(app_engine, subscriber, pusher):
    subscriber.subscribe("trust-gae-ct")
    response = app_engine.client.post("/worker/push/trust-gae-ct/ev", json={}, headers=CLOUD_TASKS_TASK)
    assert response.status_code == 403
    assert_nothing_arrived_before_the_sentinel(subscriber, pusher, "trust-gae-ct")


@pytest.mark.parametrize("count", ["²", "٣", "-1", "1e3", "9" * 400, "7 7", "0x10"])
def test_malformed_counts_never_give_a_500(app_engine, subscriber, count):
    subscriber.subscribe("trust-count")
    raw = count.encode("latin-1" if max(map(ord, count)) < 256 else "utf-8")  # WSGI reads latin-1
    headers = {**APP_ENGINE_TASK, "X-AppEngine-TaskExecutionCount": raw, "X-AppEngine-TaskRetryCount": raw}
    response = app_engine.client.post("/worker/push/trust-count/ev", json={"c": count}, headers=headers)
    assert response.json() == {"outcome": "delivered"}  # read as no earlier attempt
    subscriber.event("ev", "trust-count", timeout=10)


# -- bodies larger than any task ---------------------------------------------------------------


def peak_rss_kib(app: AppServer) -> int:
    """The gunicorn worker's peak resident memory (the only child of the master)."""
    master = app.process.pid  # type: ignore[union-attr]
    [worker] = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    status = Path(f"/proc/{worker}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def answered(connection: socket.socket) -> bool:
    """Whether the server wrote something (or closed) on ``connection``: without waiting."""
    with selectors.DefaultSelector() as selector:
        selector.register(connection, selectors.EVENT_READ)
        return bool(selector.select(0))


def send_huge(app: AppServer, headers: dict[str, str], *, chunked: bool) -> bytes:
    """Send a 100 MB task body until the server answers; return its status line."""
    lines = ["POST /worker/push/trust-huge/ev HTTP/1.1", f"Host: 127.0.0.1:{app.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}")
    with socket.create_connection(("127.0.0.1", app.port), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        piece = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK
        for _ in range(HUGE // len(CHUNK)):
            if answered(connection):
                break  # the answer came before the body was sent
            try:
                connection.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        return connection.recv(4096).split(b"\r\n", 1)[0]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_larger_than_any_task_gets_413_without_being_read(app_engine, subscriber, pusher, chunked):
    subscriber.subscribe("trust-huge")
    before = peak_rss_kib(app_engine)
    status = send_huge(app_engine, {**APP_ENGINE_TASK, "Content-Type": "text/plain"}, chunked=chunked)
    assert status.startswith(b"HTTP/1.1 413")
    assert peak_rss_kib(app_engine) - before < 20 * 1024  # 100 MB sent; at most ~1 MB read
    assert_nothing_arrived_before_the_sentinel(subscriber, pusher, "trust-huge")


def test_an_unproven_huge_body_is_refused_before_it_is_read(elsewhere):
    before = peak_rss_kib(elsewhere)
    status = send_huge(elsewhere, APP_ENGINE_TASK, chunked=False)
    assert status.startswith(b"HTTP/1.1 413")  # the server's bridge refuses the declared size first
    assert peak_rss_kib(elsewhere) - before < 20 * 1024
