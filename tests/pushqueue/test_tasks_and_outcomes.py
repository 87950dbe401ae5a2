"""The pure parts of pushqueue: outcome classification, taskqueue.add rules, the wire
format, request-scoped coalescing, the task log and the structured log lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from pusherlib import (
    PusherBadAuth,
    PusherBadRequest,
    PusherConnectionError,
    PusherForbidden,
    PusherNotSent,
    PusherPayloadTooLarge,
    PusherRateLimited,
    PusherServerError,
    PusherTimeout,
    PusherTypeError,
    PusherValueError,
)
from pushqueue import coalesce, logs, tasklog, wire
from pushqueue.outcome import Outcome, TaskRefused, classify, retry_status
from pushqueue.tasks import InvalidTaskError, ParkedTask, build_task, parked_request
from tests.support.processes import ROOT

RETRYABLE = [
    PusherTimeout("timed out"),
    PusherConnectionError("refused"),
    PusherServerError("boom", status=500),
    PusherServerError("unavailable", status=503),
    PusherRateLimited("slow down", status=429),
    PusherBadAuth("bad key", status=401),
    PusherForbidden("over quota", status=403),
    RuntimeError("a bug"),
    ValueError("a bug's stray ValueError"),
    TypeError("a bug's stray TypeError"),
    KeyError("a bug's stray KeyError"),
]
PERMANENT = [
    PusherBadRequest("bad", status=400),
    PusherPayloadTooLarge("too big", status=413),
    PusherValueError("invalid channel name"),
    PusherTypeError("data must be JSON-encodable"),
    TaskRefused("not a JSON list"),
]


# -- outcome ---------------------------------------------------------------------------


def test_an_attempt_without_error_is_delivered():
    assert classify(None, 1, 5) is Outcome.DELIVERED


@pytest.mark.parametrize("error", RETRYABLE, ids=repr)
def test_passing_failures_are_retried_until_the_last_attempt(error):
    assert classify(error, 1, 5) is Outcome.RETRIED
    assert classify(error, 4, 5) is Outcome.RETRIED
    assert classify(error, 5, 5) is Outcome.PARKED


@pytest.mark.parametrize("error", PERMANENT, ids=repr)
def test_permanent_failures_are_parked_at_once(error):
    assert classify(error, 1, 5) is Outcome.PARKED


def test_only_pusher_asking_to_slow_down_makes_the_queue_slow_down():
    """503 slows the whole queue on App Engine: only for Pusher's 429 and 5xx."""
    assert retry_status(PusherRateLimited("x", status=429)) == 503
    assert retry_status(PusherServerError("x", status=502)) == 503
    assert retry_status(PusherNotSent("not sent: no connection free")) == 503  # this instance is saturated
    assert retry_status(PusherServerError("x", status=500)) == 503
    assert retry_status(PusherBadAuth("x", status=401)) == 500
    assert retry_status(PusherForbidden("x", status=403)) == 500
    assert retry_status(PusherTimeout("x")) == 500
    assert retry_status(PusherConnectionError("refused")) == 500
    assert retry_status(RuntimeError("a bug")) == 500


# -- taskqueue.add's rules --------------------------------------------------------------


def test_params_are_form_encoded_into_a_post_body():
    task = build_task(url="/worker/push/ch/ev", params={"msg": "Hello world!", "tags": ["a", "b"]})
    assert task.method == "POST"
    assert task.body == b"msg=Hello+world%21&tags=a&tags=b"
    assert task.header("Content-Type") == "application/x-www-form-urlencoded"


def test_params_of_a_get_go_into_the_query_string():
    task = build_task(url="/x?a=1", params={"b": 2}, method="get")
    assert (task.method, task.url, task.body) == ("GET", "/x?a=1&b=2", b"")


def test_a_text_payload_is_utf8_text_plain_unless_told_otherwise():
    assert build_task(url="/x", payload="é").body == "é".encode()
    assert build_task(url="/x", payload="é").header("content-type") == "text/plain; charset=utf-8"
    task = build_task(url="/x", payload=b"{}", headers={"Content-Type": "application/json"})
    assert task.header("content-type") == "application/json"


def test_countdown_and_eta_set_the_schedule():
    eta = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None, microsecond=0)  # naive: UTC
    assert build_task(url="/x", eta=eta).eta == eta.replace(tzinfo=UTC).timestamp()
    assert build_task(url="/x", countdown=60).eta > datetime.now(UTC).timestamp() + 50
    assert build_task(url="/x", queue_name="q").url == "/x"
    assert build_task(queue_name="q").url == "/_ah/queue/q"


@pytest.mark.parametrize(
    "arguments",
    [
        {"url": "http://elsewhere/x"},
        {"url": "x"},
        {"url": "/x", "name": "not a name!"},
        {"url": "/x", "countdown": 1, "eta": 2.0},
        {"url": "/x", "countdown": -1},
        {"url": "/x", "countdown": float("nan")},
        {"url": "/x", "countdown": "60"},
        {"url": "/x", "countdown": 31 * 24 * 3600},  # both queues schedule at most 30 days ahead
        {"url": "/x", "eta": float("inf")},
        {"url": "/x", "queue_name": "no spaces"},
        {"url": "/x", "queue_name": "x" * 101},
        {"url": "/x", "params": {"a": 1}, "payload": "b"},
        {"url": "/x", "method": "GET", "payload": "b"},
        {"url": "/x", "method": "PULL"},
        {"url": "/x", "payload": 12},
    ],
)
def test_invalid_task_arguments_are_refused(arguments):
    with pytest.raises(InvalidTaskError):
        build_task(**arguments)


def test_a_parked_request_keeps_the_original_and_says_why():
    original = build_task(url="/worker/push/ch/ev", payload=b'{"a":1}', headers={"X-Pusher-Socket-Id": "1.2"})
    parked = parked_request(original, reason="Pusher answered 400:\nbad", original_task="t1", retry_count=3)
    record = ParkedTask.from_request("t1", parked)
    assert (record.reason, record.original_task, record.retry_count) == ("Pusher answered 400:?bad", "t1", 3)
    assert record.body == b'{"a":1}' and record.url == "/worker/push/ch/ev"
    assert record.original_request().headers == original.headers


# -- the wire format --------------------------------------------------------------------


def test_one_event_travels_on_its_own_url_with_its_data_as_the_body():
    task = wire.event_task(
        {"channel": "#server-to-user-a@b", "name": "new message", "data": '{"n": 1}', "socket_id": "1.2"}
    )
    assert task.url == "/worker/push/%23server-to-user-a%40b/new%20message"
    assert task.body == b'{"n": 1}'
    assert task.header(wire.SOCKET_ID_HEADER) == "1.2"


def test_a_batch_is_a_json_list_of_events():
    events = [{"channel": "a", "name": "e", "data": "x"}, {"channel": "b", "name": "e/f", "data": "é"}]
    task = wire.batch_task([wire.encode_event(e) for e in events])
    assert task.url == wire.WORKER_BATCH_PATH
    assert wire.parse_batch(task.body) == events
    assert not wire.fits_event_url(events[1])
    for body in (b"{}", b"[]", b"not json", b"\xff"):
        with pytest.raises(ValueError):
            wire.parse_batch(body)


# -- coalescing -------------------------------------------------------------------------


def test_pending_events_fill_tasks_of_ten_events():
    pending = coalesce.PendingEvents()
    names = [pending.add({"n": i}, b"x" * 10) for i in range(23)]
    assert [len(chunk.events) for chunk in pending.chunks] == [10, 10, 3]
    assert names[:10] == [pending.chunks[0].name] * 10 and names[22] == pending.chunks[2].name
    assert len(pending) == 23


def test_pending_events_start_a_new_task_before_the_size_limit():
    pending = coalesce.PendingEvents()
    for i in range(10):
        pending.add({"n": i}, b"x" * 20_000)
    assert all(chunk.size <= coalesce.MAX_TASK_BYTES for chunk in pending.chunks)
    assert [len(chunk.events) for chunk in pending.chunks] == [4, 4, 2]


# -- the task log ----------------------------------------------------------------------


def test_the_task_log_keeps_the_newest_entries_first():
    tasklog.clear()
    for i in range(tasklog.CAPACITY + 5):
        tasklog.record("delivered", f"t{i}", "ch", "ev", i % 3, 200)
    recent = tasklog.recent(3)
    assert [entry["task"] for entry in recent] == [f"t{tasklog.CAPACITY + 4 - i}" for i in range(3)]
    assert recent[0]["outcome"] == "delivered" and recent[0]["pusher_status"] == 200
    assert len(tasklog.recent(10_000)) == tasklog.CAPACITY
    tasklog.clear()
    assert tasklog.recent() == []


# -- structured logs -------------------------------------------------------------------


def test_log_lines_are_cloud_logging_json(capsys):
    logs.configure()
    logs.log(
        logging.ERROR, "pusher task parked", task="t1", channel="ch", outcome="parked", pusher_status=400
    )
    entry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert entry == {
        "severity": "ERROR",
        "message": "pusher task parked",
        "task": "t1",
        "channel": "ch",
        "outcome": "parked",
        "pusher_status": 400,
    }


# -- a library the app composes --------------------------------------------------------


def test_pushqueue_never_imports_the_apps_settings():
    """Every module of pushqueue loads without the app's settings module or handlers."""
    modules = [f"pushqueue.{path.stem}" for path in (ROOT / "pushqueue").glob("*.py")]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "assert 'settings' not in sys.modules and 'handlers' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
