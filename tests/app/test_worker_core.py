"""Every way to a queue task goes through the one worker core and ends the same; log lines
written without ``logging`` are the same lines.

Each task below goes once through the app (``POST /worker/`` routed to the core before
webapp2), once through the RSGI bridge as the entrypoint serves it (routed to the core on
the event loop), and once through webapp2 alone (the core's webapp2 route), to a real
soketi: the answers (status, content type, JSON), the events a subscriber receives and the
task log's outcomes must be the same.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
import webapp2
import webtest

from handlers.application import TASK_ROUTE, create_app
from handlers.rsgi_bridge import RsgiBridge
from pushqueue import logs, tasklog
from settings import Settings
from tests.app.test_rsgi_bridge import Headers, Protocol
from tests.support.processes import free_port

QUEUE = {"X-AppEngine-QueueName": "pusher", "X-AppEngine-TaskExecutionCount": "0"}
FORM = "application/x-www-form-urlencoded"

# (method, path, body, content type, extra headers): what a queue (or a forger) may send.
TASKS = [
    ("POST", "/worker/push/fast-{run}/json", b'{"n": 1}', "application/json", {}),
    ("POST", "/worker/push/fast-{run}/form", b"msg=Hello+world%21&n=2", FORM, {}),
    ("POST", "/worker/push/fast-{run}/form-charset", b"msg=x", FORM + "; charset=UTF-8", {}),
    ("POST", "/worker/push/fast-{run}/bad-form", b"msg=%FF%FE", FORM, {}),
    ("POST", "/worker/push/fast-{run}/raw-form", b"msg=\xff", FORM, {}),
    ("POST", "/worker/push/fast-{run}/not-utf8", b"\xff\xfe", "application/json", {}),
    ("POST", "/worker/push/fast-{run}/socket", b"{}", "application/json", {"X-Pusher-Socket-Id": "1.2"}),
    ("POST", "/worker/push/fast-{run}/bad name!", b"{}", "application/json", {}),
    ("POST", "/worker/push/fast-{run}/pusher:reserved", b"{}", "application/json", {}),
    ("POST", "/worker/push/fast-{run}/%C3%A9vent", b"{}", "application/json", {}),
    ("POST", "/worker/push/fast-{run}/q?x=1&y=%20", b"{}", "application/json", {}),
    ("POST", "/worker/push/fast-{run}/a/b", b"{}", "application/json", {}),
    ("POST", "/worker/push/fast-{run}", b"{}", "application/json", {}),
    ("GET", "/worker/push/fast-{run}/get", b"", "", {}),
    ("PUT", "/worker/push/fast-{run}/put", b"{}", "application/json", {}),
    ("POST", "/worker/batch", None, "application/json", {}),
    ("POST", "/worker/batch", b"[not json", "application/json", {}),
    ("POST", "/worker/other", b"{}", "application/json", {}),
    ("POST", "/worker/push/fast-{run}/unproven", b"{}", "application/json", {"X-AppEngine-QueueName": ""}),
]


def batch_body(run: str) -> bytes:
    event = {"channel": f"fast-{run}", "name": "batched", "data": '{"b": 1}'}
    return json.dumps([event, {**event, "name": "batched-2"}]).encode()


@pytest.fixture(scope="module")
def apps(soketi):
    """The app, the same app behind the RSGI bridge, and its webapp2 alone (no route to
    the core before webapp2, no coalescing)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "PUSHER_URL": soketi.url,
            "GOOGLE_CLOUD_PROJECT": "test-project",
            "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
            "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",
        }.items():
            env.setenv(name, value)
        main = importlib.import_module("main")
        app = create_app(Settings.from_env(), main.ROUTE_GROUPS, app_engine_apis=False)
        loop_app = create_app(Settings.from_env(), main.ROUTE_GROUPS, app_engine_apis=False)

    def webapp2_alone(environ, start_response):
        return webapp2.WSGIApplication.__call__(app, environ, start_response)

    counter = OnLoopCounter(loop_app.task_core.serve_on_loop)
    bridge = RsgiBridge(
        loop_app, threads=2, body_timeout=10, max_body_bytes=1 << 20, loop_routes={TASK_ROUTE: counter}
    )
    with RsgiClient(bridge) as rsgi:
        yield {"fast": webtest.TestApp(app), "loop": rsgi, "webapp2": webtest.TestApp(webapp2_alone)}


class OnLoopCounter:
    """The bridge's route to the core, counting the paths it answered and the calls it ran on threads."""

    def __init__(self, serve):
        self.serve, self.answered, self.blocking_calls = serve, [], 0

    async def __call__(self, environ, body, blocking):
        def counted(call):
            self.blocking_calls += 1
            return blocking(call)

        answer = await self.serve(environ, body, counted)
        self.answered.append(environ["PATH_INFO"])
        return answer


class RsgiClient:
    """Requests to an RSGI bridge called in-process on one event loop, answered as webtest
    answers (the parts :func:`send` reads). The path is given percent-decoded, as granian does."""

    def __init__(self, bridge: RsgiBridge):
        self.bridge, self.loop = bridge, asyncio.new_event_loop()

    def __enter__(self) -> RsgiClient:
        return self

    def __exit__(self, *exc_info) -> None:
        loop_pusher = self.bridge.app.services.worker.loop_pusher
        self.loop.run_until_complete(loop_pusher.transport.aclose())  # no connection left behind
        self.loop.close()
        self.bridge.threads.shutdown()

    def post(self, target, body, headers):
        return self.request(target, "POST", body, headers)

    def request(self, target, method, body, headers, expect_errors=False):
        path, _, query = target.partition("?")
        names = {name.lower(): value for name, value in headers.items()}
        scope = SimpleNamespace(
            proto="http",
            method=method,
            path=unquote(path),
            query_string=query,
            server="127.0.0.1:80",
            client="127.0.0.1:1234",
            scheme="http",
            http_version="1.1",
            headers=Headers({**names, "content-length": str(len(body))}),
        )
        protocol = Protocol(body)
        self.loop.run_until_complete(self.bridge.__rsgi__(scope, protocol))
        status, answer_headers, answer = protocol.answer
        content_type = dict((name.lower(), value) for name, value in answer_headers).get("content-type", "")
        return SimpleNamespace(
            status_int=status,
            content_type=content_type.split(";")[0],
            body=answer,
            json=json.loads(answer) if answer else None,
        )


def send(client: webtest.TestApp, run: str, index: int, task) -> tuple:
    """Send ``task`` on channel ``fast-<run>`` (task ``<run>-<index>``): the answer's status,
    content type and JSON."""
    method, path, body, content_type, extra = task
    headers = {**QUEUE, "X-AppEngine-TaskName": f"{run}-{index}", **extra}
    if content_type:
        headers["Content-Type"] = content_type
    if body is None:
        body = batch_body(run)
    answer = client.request(
        path.format(run=run), method=method, body=body, headers=headers, expect_errors=True
    )
    return answer.status_int, answer.content_type, answer.json if answer.body else None


def loop_counter(apps) -> OnLoopCounter:
    """What the bridge of ``apps["loop"]`` routes to the core on its loop."""
    return apps["loop"].bridge.loop_routes[TASK_ROUTE]


def test_every_way_to_the_core_answers_sends_and_logs_alike(apps, subscriber):
    seen = {}
    subscriber.subscribe("fast-same")
    for run, client in apps.items():  # the same channel and task names: one run after the other
        tasklog.clear()
        answers = [send(client, "same", index, task) for index, task in enumerate(TASKS)]
        sentinel = {**QUEUE, "X-AppEngine-TaskName": "sentinel"}
        client.post("/worker/push/fast-same/sentinel", b"{}", headers=sentinel)
        subscriber.event("sentinel", "fast-same", timeout=10)
        events = [(m["event"], m["data"]) for m in subscriber.events if m.get("channel") == "fast-same"]
        subscriber.events.clear()
        outcomes = [(entry["task"], entry["outcome"]) for entry in reversed(tasklog.recent(100))]
        seen[run] = answers, events, outcomes
    assert seen["fast"] == seen["webapp2"]
    assert seen["loop"] == seen["webapp2"]
    answers, events, outcomes = seen["fast"]
    assert answers[0] == (200, "application/json", {"outcome": "delivered"})
    assert answers[-1][0] == 403
    assert {name: json.loads(data) for name, data in events}["form"] == {"msg": "Hello world!", "n": "2"}
    assert ("batched-2", '{"b": 1}') in events
    assert ("same-0", "delivered") in outcomes


class CountingApp:
    """webapp2's place in the app: counts what reaches it."""

    def __init__(self, app):
        self.app, self.calls = app, []

    def __call__(self, environ, start_response):
        self.calls.append(environ["PATH_INFO"])
        return self.app(environ, start_response)


def test_posted_tasks_are_routed_to_the_core_before_webapp2(apps, monkeypatch):
    app = apps["fast"].app
    inner = CountingApp(app._routed)
    monkeypatch.setattr(app, "_routed", inner)
    for index, task in enumerate(TASKS):
        send(apps["fast"], "counted", index, task)
    prefix = "/worker/push/fast-counted/"
    assert inner.calls == [prefix + "get", prefix + "put"]  # webapp2's route to the core parks them
    apps["fast"].get("/tasks/recent", expect_errors=True)
    assert inner.calls[-1] == "/tasks/recent"


def test_the_bridge_triggers_one_event_tasks_on_the_loop_and_parks_on_a_thread(apps):
    """The RSGI bridge routes every POSTed task to the core on its event loop: one-event
    tasks are triggered there; parking and batches go through ``blocking``."""
    counter = loop_counter(apps)
    counter.answered.clear()
    counter.blocking_calls = 0
    for index, task in enumerate(TASKS):
        send(apps["loop"], "looped", index, task)
    prefix = "/worker/push/fast-looped/"
    on_loop = ["json", "form", "form-charset", "bad-form", "raw-form", "not-utf8", "socket", "bad name!"]
    on_loop += ["pusher:reserved", "évent".encode().decode("latin-1"), "q", "a/b"]  # PATH_INFO: latin-1
    posted = [prefix + name for name in on_loop] + ["/worker/push/fast-looped"]
    posted += ["/worker/batch", "/worker/batch", "/worker/other", prefix + "unproven"]
    assert counter.answered == posted
    # on a thread: parking (form fields not UTF-8, data not UTF-8, a reserved event name,
    # a/b, no event, an unknown URL) and the two batches; the unproven task is refused at once
    assert counter.blocking_calls == 8


def test_without_an_asyncio_client_every_task_runs_on_a_thread(apps, monkeypatch):
    counter = loop_counter(apps)
    counter.answered.clear()
    counter.blocking_calls = 0
    monkeypatch.setattr(apps["loop"].bridge.app.services.worker, "loop_pusher", None)
    status, _, answer = send(apps["loop"], "threaded", 0, TASKS[0])
    assert (status, answer) == (200, {"outcome": "delivered"})
    assert counter.blocking_calls == 1


def test_log_lines_written_directly_are_the_formatters_lines(capsys):
    logs.configure()
    fields = {"task": "t-é", "outcome": "delivered", "pusher_status": 200, "error": None}
    logs.log(logging.INFO, "pusher task delivered", **fields)
    written = capsys.readouterr().out
    record = logging.LogRecord("pushqueue", logging.INFO, __file__, 1, "pusher task delivered", (), None)
    record.fields = fields
    assert written == logs.CloudLoggingFormatter().format(record) + "\n"


def test_log_lines_go_through_logging_when_another_handler_listens(capsys):
    logs.configure()
    seen: list[logging.LogRecord] = []
    listener = logging.Handler()
    listener.emit = seen.append
    logs.LOGGER.addHandler(listener)
    try:
        logs.log(logging.WARNING, "pusher task retried", task="t2")
    finally:
        logs.LOGGER.removeHandler(listener)
    assert [(record.getMessage(), record.fields) for record in seen] == [
        ("pusher task retried", {"task": "t2"})
    ]
    assert json.loads(capsys.readouterr().out)["task"] == "t2"
