"""The worker's fast path answers exactly as the webapp2 handlers do, and serves only the
common case itself; log lines written without ``logging`` are the same lines.

Each task below goes once through the app (fast path in front) and once through webapp2
alone, to a real soketi: the answers (status, content type, JSON), the events a subscriber
receives and the task log's outcomes must be the same.
"""

from __future__ import annotations

import importlib
import json
import logging

import pytest
import webapp2
import webtest

from handlers.application import create_app
from handlers.worker_fast_path import WorkerFastPath
from pushqueue import logs, tasklog
from settings import Settings
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
    """The app, and the same app's webapp2 alone (no fast path, no coalescing)."""
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

    def webapp2_alone(environ, start_response):
        return webapp2.WSGIApplication.__call__(app, environ, start_response)

    return {"fast": webtest.TestApp(app), "webapp2": webtest.TestApp(webapp2_alone)}


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


def test_the_fast_path_answers_sends_and_logs_as_webapp2_does(apps, subscriber):
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
    answers, events, outcomes = seen["fast"]
    assert answers[0] == (200, "application/json", {"outcome": "delivered"})
    assert answers[-1][0] == 403
    assert {name: json.loads(data) for name, data in events}["form"] == {"msg": "Hello world!", "n": "2"}
    assert ("batched-2", '{"b": 1}') in events
    assert ("same-0", "delivered") in outcomes


class CountingApp:
    """webapp2's place behind the fast path: counts what reaches it."""

    def __init__(self, app):
        self.app, self.calls = app, []

    def __call__(self, environ, start_response):
        self.calls.append(environ["PATH_INFO"])
        return self.app(environ, start_response)


def test_only_the_common_case_skips_webapp2(apps):
    inner = CountingApp(apps["webapp2"].app)
    client = webtest.TestApp(WorkerFastPath(inner, apps["fast"].app.services))
    for index, task in enumerate(TASKS):
        send(client, "counted", index, task)
    prefix = "/worker/push/fast-counted/"
    assert {prefix + "json", prefix + "form", prefix + "socket", "/worker/batch"}.isdisjoint(inner.calls)
    assert set(inner.calls) == {
        prefix + "a/b",
        "/worker/push/fast-counted",
        prefix + "get",
        prefix + "put",
        "/worker/other",
        prefix + "unproven",
        prefix + "raw-form",  # form fields that are not UTF-8: the handler parks the task
    }


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
