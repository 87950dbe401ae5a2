"""Every branch of the app's handlers, through WebTest.

The queue is the App Engine testbed's taskqueue stub (TASKS_BACKEND=taskqueue; parked events
in memory, as in local development: the Datastore store is tested in test_parking.py); a task
is run by posting it to the worker with the headers the stub gave it. Pusher is a real soketi;
a fault server stands in for what soketi cannot answer (429, 5xx, slow answers).
"""

from __future__ import annotations

import importlib
import json

import pytest
import webapp2
import webtest
from google.appengine.ext import testbed

import pushqueue
from handlers.application import create_app
from pushqueue import tasklog, taskqueue  # the seed's code imported google.appengine.api.labs.taskqueue
from settings import Settings
from tests.support.credentials import PUBLISHER_ENVIRON, TRUST_ENV
from tests.support.fault_server import FaultServer, Reply
from tests.support.processes import ROOT, free_port
from tests.support.seed_app import seed_routes
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber

QUEUE = "pusher"
ADMIN = {"X-AppEngine-User-Is-Admin": "1"}
LOCAL = {"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1"}  # local development: parked events in memory


def task_headers(name: str = "t1", retries: int = 0, queue: str = QUEUE) -> dict[str, str]:
    return {
        "X-AppEngine-QueueName": queue,
        "X-AppEngine-TaskName": name,
        "X-AppEngine-TaskRetryCount": str(retries),
        "X-AppEngine-TaskExecutionCount": str(retries),  # the worker counts these
    }


@pytest.fixture(scope="module")
def route_groups():
    """``main.ROUTE_GROUPS`` (importing main builds an app from the environment)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PUSHER_URL", "http://key:secret@127.0.0.1:1/apps/1")
        env.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
        env.setenv("CLOUD_TASKS_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
        env.setenv("TASKS_BACKEND", "cloudtasks")
        env.setenv("ALLOW_UNVERIFIED_LOCAL_REQUESTS", "1")
        main = importlib.import_module("main")
    return main.ROUTE_GROUPS


@pytest.fixture
def queue_stub():
    """The testbed's taskqueue stub with the queues of queue.yaml."""
    bed = testbed.Testbed()
    bed.activate()
    bed.init_taskqueue_stub(root_path=str(ROOT))
    tasklog.clear()
    yield bed.get_stub(testbed.TASKQUEUE_SERVICE_NAME)
    bed.deactivate()
    pushqueue.configure(None)


@pytest.fixture
def make_app(route_groups, queue_stub):
    """``make_app(pusher_url, **env)``: a TestApp on the stub's queues, publishing with the
    tests' token."""

    def make(pusher_url: str, *, extra_groups=(), **env: str) -> webtest.TestApp:
        base = {"TASKS_BACKEND": "taskqueue", "PUSHER_URL": pusher_url, **TRUST_ENV}
        settings = Settings.from_env({**base, **env})
        groups = (*route_groups, *extra_groups)
        app = create_app(settings, groups, app_engine_apis=False)
        return webtest.TestApp(app, extra_environ=PUBLISHER_ENVIRON)

    return make


@pytest.fixture
def app(make_app, soketi):
    return make_app(soketi.url)


def queued(stub, queue: str = QUEUE) -> list:
    return stub.get_filtered_tasks(queue_names=[queue])


def run_task(app: webtest.TestApp, stub, task, queue: str = QUEUE) -> webtest.TestResponse:
    """Post ``task`` to the app as the queue would, then take it off the stub."""
    skip = {"content-length", "host", "content-type"}
    headers = {k: str(v) for k, v in task.headers.items() if k.lower() not in skip}
    content_type = next((v for k, v in task.headers.items() if k.lower() == "content-type"), "")
    response = app.post(
        task.url, task.payload or b"", headers=headers, content_type=content_type, expect_errors=True
    )
    stub.DeleteTask(queue, task.name)
    return response


def run_all(app, stub) -> list[webtest.TestResponse]:
    return [run_task(app, stub, task) for task in queued(stub)]


def post_task(
    app: webtest.TestApp,
    path: str,
    body: str = "{}",
    *,
    name: str = "t1",
    retries: int = 0,
    queue: str = QUEUE,
    extra: dict[str, str] | None = None,
    status: int | str = "*",
) -> webtest.TestResponse:
    """Post ``body`` to the worker as ``queue`` delivers task ``name`` after ``retries`` retries."""
    headers = {**task_headers(name, retries, queue), **(extra or {})}
    return app.post(path, body, headers=headers, content_type="application/json", status=status)


def fault_url(port: int) -> str:
    """A ``PUSHER_URL`` for a fault server (or a closed port) on ``port``."""
    return f"http://key:secret@127.0.0.1:{port}/apps/1"


def parked(app) -> list[dict]:
    return app.get("/admin/parked", headers=ADMIN).json["parked"]


# -- the front end: POST /push/<channel>/<event> ---------------------------------------------


def test_json_data_is_queued_and_the_worker_sends_it_as_it_is(app, queue_stub, subscriber):
    subscriber.subscribe("push-json")
    response = app.post_json("/push/push-json/created", {"id": 7, "tags": ["a"]}, status=202)
    [task] = queued(queue_stub)
    assert response.json == {"task": task.name}
    assert task.url == "/worker/push/push-json/created"
    assert run_task(app, queue_stub, task).json == {"outcome": "delivered"}
    assert json.loads(subscriber.event("created", "push-json")["data"]) == {"id": 7, "tags": ["a"]}


def test_any_json_value_is_data(app, queue_stub, subscriber):
    subscriber.subscribe("push-values")
    for value in ("plain text", [1, 2], 3.5, None):
        app.post_json("/push/push-values/value", value, status=202)
    assert all(r.status_int == 200 for r in run_all(app, queue_stub))
    received = [subscriber.event("value", "push-values")["data"] for _ in range(4)]
    assert received == ["plain text", "[1, 2]", "3.5", "null"]


def test_form_fields_are_sent_as_a_dict_of_strings(app, queue_stub, subscriber):
    subscriber.subscribe("push-form")
    app.post("/push/push-form/note", {"msg": "Hello world!", "n": "1"}, status=202)
    run_all(app, queue_stub)
    assert json.loads(subscriber.event("note", "push-form")["data"]) == {"msg": "Hello world!", "n": "1"}


def test_the_socket_id_travels_with_the_task(app, queue_stub):
    app.post_json("/push/push-socket/ev?socket_id=123.456", {}, status=202)
    [task] = queued(queue_stub)
    assert task.headers["X-Pusher-Socket-Id"] == "123.456"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/push/bad%20channel/ev", "{}", "invalid channel name"),
        ("/push/ch/ev?socket_id=nope", "{}", "socket_id"),
        ("/push/ch/ev", "{not json", "JSON or form fields"),
        ("/push/ch/ev", json.dumps({"big": "x" * 11_000}), "bytes"),
        ("/push/private-encrypted-ch/ev", "{}", "encryption_master_key"),
    ],
)
def test_invalid_input_gets_400_and_queues_nothing(app, queue_stub, path, body, message):
    response = app.post(path, body, content_type="application/json", status=400)
    assert message in response.json["error"]
    assert queued(queue_stub) == []


def test_a_body_above_the_limit_is_refused_before_reading(make_app, soketi, queue_stub):
    app = make_app(soketi.url, MAX_REQUEST_BYTES="2048")
    response = app.post(
        "/push/ch/ev", json.dumps({"x": "y" * 3000}), content_type="application/json", status=413
    )
    assert "2048" in response.json["error"]
    assert queued(queue_stub) == []


def test_an_unreachable_queue_gets_503(route_groups, soketi):
    env = {
        **LOCAL,
        "PUSHER_URL": soketi.url,
        "GOOGLE_CLOUD_PROJECT": "test-project",
        "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{free_port()}",  # nothing listens
        **TRUST_ENV,
    }
    app = webtest.TestApp(create_app(Settings.from_env(env), route_groups), extra_environ=PUBLISHER_ENVIRON)
    response = app.post_json("/push/ch/ev", {"n": 1}, status=503)
    assert "queue cannot be reached" in response.json["error"]


def test_methods_and_paths_that_do_not_exist_get_json_errors(app):
    assert app.get("/push/ch/ev", status=405).json["error"]
    assert app.get("/nowhere", status=404).json["error"]
    assert app.get("/_ah/warmup", status=200).text == "OK"


# -- coalescing: one request's events in few tasks ---------------------------------------------


def burst(request: webapp2.Request) -> webapp2.Response:
    """A front-end handler that enqueues ``n`` events in one request."""
    count = int(request.GET["n"])
    names = {pushqueue.enqueue_event("burst", "tick", {"i": i}) for i in range(count)}
    if request.GET.get("fail"):
        raise RuntimeError("the handler failed after enqueueing")
    if request.GET.get("status"):  # a refusal after enqueueing
        return webapp2.Response(b'{"error": "refused"}', status=int(request.GET["status"]))
    return webapp2.Response(json.dumps(sorted(names)).encode(), content_type="application/json")


def burst_routes(services):
    return [webapp2.Route("/burst", burst)]


def test_events_of_one_request_travel_in_tasks_of_ten(make_app, soketi, queue_stub, subscriber):
    app = make_app(soketi.url, extra_groups=[burst_routes])
    subscriber.subscribe("burst")
    names = app.get("/burst?n=12").json
    tasks = queued(queue_stub)
    assert sorted(task.name for task in tasks) == names
    assert sorted(len(json.loads(task.payload)) for task in tasks) == [2, 10]
    assert {task.url for task in tasks} == {"/worker/batch"}
    assert [r.json["outcome"] for r in run_all(app, queue_stub)] == ["delivered", "delivered"]
    received = sorted(json.loads(subscriber.event("tick", "burst")["data"])["i"] for _ in range(12))
    assert received == list(range(12))


def test_a_failed_request_queues_none_of_its_events(make_app, soketi, queue_stub):
    app = make_app(soketi.url, extra_groups=[burst_routes])
    app.get("/burst?n=3&fail=1", status=500)
    assert queued(queue_stub) == []


@pytest.mark.parametrize("status", [400, 404, 409])
def test_a_request_answered_4xx_queues_none_of_its_events(make_app, soketi, queue_stub, status):
    app = make_app(soketi.url, extra_groups=[burst_routes])
    app.get(f"/burst?n=3&status={status}", status=status)
    assert queued(queue_stub) == []


def test_collecting_queues_the_block_s_events_at_its_end(app, queue_stub):
    """``pushqueue.collecting()`` outside a request: nothing queued inside the block, every
    event in tasks of ten at its end."""
    with pushqueue.collecting() as pending:
        names = {pushqueue.enqueue_event("collected", "tick", {"i": i}) for i in range(12)}
        assert queued(queue_stub) == [] and len(pending) == 12
    tasks = queued(queue_stub)
    assert sorted(task.name for task in tasks) == sorted(names)
    assert sorted(len(json.loads(task.payload)) for task in tasks) == [2, 10]


def test_collecting_queues_nothing_when_the_block_fails(app, queue_stub):
    with pytest.raises(RuntimeError), pushqueue.collecting():
        pushqueue.enqueue_event("collected", "tick", {"i": 0})
        raise RuntimeError("the block failed after enqueueing")
    assert queued(queue_stub) == []


def test_an_event_for_several_channels_is_one_batch_task(app, queue_stub, subscriber):
    subscriber.subscribe("multi-a")
    subscriber.subscribe("multi-b")
    pushqueue.enqueue_event(["multi-a", "multi-b"], "hello", "hi")
    [task] = queued(queue_stub)
    assert task.url == "/worker/batch"
    run_task(app, queue_stub, task)
    assert subscriber.event("hello", "multi-a")["data"] == "hi"
    assert subscriber.event("hello", "multi-b")["data"] == "hi"


# -- the worker: who may call it --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/worker/push/ch/ev", "/worker/batch", "/worker/anything"])
def test_the_worker_refuses_requests_not_from_a_queue(make_app, path):
    with FaultServer() as pusher:
        app = make_app(fault_url(pusher.port))
        response = app.post(path, "{}", content_type="application/json", status=403)
        assert "task queue" in response.json["error"]
        assert pusher.request_count == 0


def test_the_worker_serves_cloud_tasks_headers(app, subscriber):
    subscriber.subscribe("ct-headers")
    headers = {
        "X-CloudTasks-QueueName": QUEUE,
        "X-CloudTasks-TaskName": "t9",
        "X-CloudTasks-TaskRetryCount": "0",
        "X-CloudTasks-TaskExecutionCount": "0",
    }
    app.post(
        "/worker/push/ct-headers/ev", '{"a": 1}', headers=headers, content_type="application/json", status=200
    )
    assert json.loads(subscriber.event("ev", "ct-headers")["data"]) == {"a": 1}


# -- the worker: outcomes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_soketi():
    """A soketi accepting at most 1 KB of event data: it answers 413 for more."""
    with Soketi(name="soketi-small-payload", max_event_kb=1) as server:
        yield server


def test_pusher_400_parks_the_event_and_acknowledges_it(app, queue_stub):
    response = post_task(app, "/worker/push/ch/ev", "", name="t400")  # soketi: empty data is a 400
    assert response.status_int == 200 and response.json["outcome"] == "parked"
    [record] = parked(app)
    assert record["name"] == "pusher__t400" and "400" in record["reason"]
    assert record["url"] == "/worker/push/ch/ev"


def test_pusher_413_parks_the_event(make_app, small_soketi, queue_stub):
    app = make_app(small_soketi.url)
    body = json.dumps({"text": "x" * 3000})
    response = post_task(app, "/worker/push/ch/ev", body, name="t413")
    assert response.status_int == 200 and response.json["outcome"] == "parked"
    [record] = parked(app)
    assert "413" in record["reason"] and record["body"] == body


def test_a_task_that_cannot_be_parked_is_retried_with_500(make_app, soketi, queue_stub):
    """The parking store is full (local development's memory store): the task stays in its
    queue (500, not 503: the queue need not slow down for it)."""
    app = make_app(soketi.url)
    app.app.services.parking.capacity = 0
    bad = {"X-Pusher-Socket-Id": "not-a-socket"}
    response = post_task(app, "/worker/push/ch/ev", name="tnopark", extra=bad, status=500)
    assert response.json["outcome"] == "retried" and "could not park" in response.json["error"]


def test_an_event_failing_pusherlibs_checks_is_parked(app, queue_stub):
    response = post_task(app, "/worker/push/ch/ev", name="tbad", extra={"X-Pusher-Socket-Id": "not-a-socket"})
    assert response.json["outcome"] == "parked"
    assert parked(app)[0]["headers"]["X-Pusher-Socket-Id"] == "not-a-socket"


def test_refused_credentials_are_retried_with_500(make_app, soketi, queue_stub):
    app = make_app(f"http://{soketi.key}:wrong-secret@127.0.0.1:{soketi.port}/apps/{soketi.app_id}")
    assert post_task(app, "/worker/push/ch/ev", status=500).json["outcome"] == "retried"
    assert parked(app) == []


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retried_with_503(make_app, queue_stub, status):
    with FaultServer(default=Reply.json(status, {"error": "try later"})) as pusher:
        app = make_app(fault_url(pusher.port))
        response = post_task(app, "/worker/push/ch/ev", status=503)
        assert response.json["outcome"] == "retried" and str(status) in response.json["error"]
        assert pusher.request_count >= 1
    assert parked(app) == []


def test_a_timeout_is_retried_with_500(make_app, queue_stub):
    """Not 503: that would slow the whole queue, and Pusher did not ask for it."""
    with FaultServer(default=Reply(200, b"{}", delay=2)) as pusher:
        app = make_app(fault_url(pusher.port), PUSHER_TIMEOUT="0.2")
        assert post_task(app, "/worker/push/ch/ev", status=500).json["outcome"] == "retried"


def test_a_connection_failure_is_retried_then_parked_past_the_budget(make_app, queue_stub):
    app = make_app(fault_url(free_port()), PUSHER_MAX_ATTEMPTS="3")
    statuses = [post_task(app, "/worker/push/ch/ev", name="tdown", retries=n).status_int for n in range(2)]
    assert statuses == [500, 500]  # a connection failure does not slow the queue
    last = post_task(app, "/worker/push/ch/ev", name="tdown", retries=2)
    assert last.status_int == 200 and last.json["outcome"] == "parked"
    assert parked(app)[0]["retry_count"] == 2


def test_attempts_that_never_reached_the_app_do_not_use_up_the_budget(make_app, queue_stub):
    """After a long outage of the app the retry count is high but the execution count is
    not: the task is retried, not parked at its first failure."""
    app = make_app(fault_url(free_port()), PUSHER_MAX_ATTEMPTS="3")
    outage = {"X-AppEngine-TaskRetryCount": "50", "X-AppEngine-TaskExecutionCount": "1"}
    response = post_task(app, "/worker/push/ch/ev", name="tout", extra=outage, status=500)
    assert response.json["outcome"] == "retried" and parked(app) == []
    outage["X-AppEngine-TaskExecutionCount"] = "2"  # the third attempt that reached the app
    assert post_task(app, "/worker/push/ch/ev", name="tout", extra=outage).json["outcome"] == "parked"


def test_parking_twice_keeps_one_copy(app, queue_stub):
    for _ in range(2):
        post_task(app, "/worker/push/ch/ev", "", name="tdup", status=200)
    assert [record["name"] for record in parked(app)] == ["pusher__tdup"]


def test_event_data_that_is_not_utf8_is_parked_at_once(app, queue_stub):
    """A malformed task, not a passing failure (a bare ValueError is no longer permanent)."""
    headers = task_headers("tutf")
    response = app.post("/worker/push/ch/ev", b"\x80", headers=headers, content_type="text/plain")
    assert response.json["outcome"] == "parked" and "not UTF-8" in response.json["error"]
    assert parked(app)[0]["name"] == "pusher__tutf"


def test_a_task_for_an_unknown_worker_url_is_parked(app, queue_stub):
    assert post_task(app, "/worker/nothing/here", "x", name="tlost").json["outcome"] == "parked"
    assert parked(app)[0]["url"] == "/worker/nothing/here"


# -- the worker: batches ------------------------------------------------------------------


def batch_body(count: int, channel: str = "batch") -> str:
    return json.dumps(
        [{"channel": channel, "name": "tick", "data": json.dumps({"i": i})} for i in range(count)]
    )


def sent_numbers(events: list[dict]) -> list[int]:
    return [json.loads(event["data"])["i"] for event in events]


def test_a_batch_is_sent_with_one_call_per_ten_events(make_app, queue_stub):
    with FaultServer() as pusher:
        app = make_app(fault_url(pusher.port))
        post_task(app, "/worker/batch", batch_body(23), status=200)
        assert [len(json.loads(request.body)["batch"]) for request in pusher.requests] == [10, 10, 3]
        assert {request.path for request in pusher.requests} == {"/apps/1/batch_events"}


def test_a_batch_reaches_subscribers(app, subscriber):
    subscriber.subscribe("batch-real")
    post_task(app, "/worker/batch", batch_body(12, "batch-real"), status=200)
    received = sorted(json.loads(subscriber.event("tick", "batch-real")["data"])["i"] for _ in range(12))
    assert received == list(range(12))


def test_a_batch_failing_midway_queues_the_rest_and_acknowledges(make_app, queue_stub):
    with FaultServer([Reply(200), Reply.json(503, {"error": "busy"})]) as pusher:
        app = make_app(fault_url(pusher.port))
        post_task(app, "/worker/batch", batch_body(25), status=200)
        [rest] = queued(queue_stub)
        assert sent_numbers(json.loads(rest.payload)) == list(range(10, 25))
        run_task(app, queue_stub, rest)
        delivered = [event for request in pusher.requests[2:] for event in json.loads(request.body)["batch"]]
        assert sent_numbers(delivered) == list(range(10, 25))


def test_a_shards_batch_failing_midway_queues_the_rest_on_that_shard(make_app, queue_stub):
    with FaultServer([Reply(200), Reply.json(503, {"error": "busy"})]) as pusher:
        app = make_app(fault_url(pusher.port))
        post_task(app, "/worker/batch", batch_body(25), queue="pusher-2", status=200)
        [rest] = queued(queue_stub, "pusher-2")
        assert sent_numbers(json.loads(rest.payload)) == list(range(10, 25)) and queued(queue_stub) == []


def test_a_batch_failing_at_once_is_retried_whole(make_app, queue_stub):
    with FaultServer([Reply.json(503, {"error": "busy"})]) as pusher:
        app = make_app(fault_url(pusher.port))
        post_task(app, "/worker/batch", batch_body(15), status=503)
        assert pusher.request_count == 1 and queued(queue_stub) == []


def test_a_refused_chunk_is_sent_again_event_by_event_and_only_the_bad_one_parked(make_app, queue_stub):
    refused = Reply.json(400, {"error": "bad"})
    with FaultServer([refused, Reply(200), refused]) as pusher:
        app = make_app(fault_url(pusher.port))
        assert post_task(app, "/worker/batch", batch_body(15), name="tb").json["outcome"] == "parked"
        assert pusher.request_count == 12  # two chunks, then the first one's 10 events alone
        [record] = parked(app)
        assert record["name"] == "pusher__tb-0" and sent_numbers(json.loads(record["body"])) == [0]


def test_each_bad_event_is_parked_under_its_own_name(make_app, small_soketi, queue_stub):
    """25 events, too large for Pusher at 0 and 20: those two parked apart, the 23 others
    delivered; a lost ack parks them again under the same names, once."""
    events = [{"channel": "chunks", "name": "tick", "data": json.dumps({"i": i})} for i in range(25)]
    for bad in (0, 20):
        events[bad]["data"] = json.dumps({"i": bad, "pad": "x" * 3000})
    app = make_app(small_soketi.url)
    with Subscriber(small_soketi.ws_url) as subscriber:
        subscriber.subscribe("chunks")
        for _ in range(2):  # the second time: the acknowledgement was lost
            assert post_task(app, "/worker/batch", json.dumps(events), name="t25").json["outcome"] == "parked"
        received = [json.loads(subscriber.event("tick", "chunks")["data"])["i"] for _ in range(46)]
    assert sorted(received) == sorted([i for i in range(25) if i not in (0, 20)] * 2)
    records = sorted(parked(app), key=lambda record: record["name"])
    assert [record["name"] for record in records] == ["pusher__t25-0", "pusher__t25-20"]
    assert [sent_numbers(json.loads(record["body"])) for record in records] == [[0], [20]]
    assert all(record["original_task"] == "t25" for record in records)


@pytest.mark.parametrize("body", ["not json", "[]", '{"channel": "a"}', '[{"channel": "a"}]'])
def test_a_malformed_batch_is_parked(app, queue_stub, body):
    assert post_task(app, "/worker/batch", body, name="tm").json["outcome"] == "parked"
    assert parked(app)[0]["body"] == body


# -- the parked-task admin ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/admin/parked"), ("POST", "/admin/parked/replay"), ("POST", "/admin/parked/x/replay")],
)
def test_the_admin_pages_refuse_non_admins(app, method, path):
    headers = {"X-AppEngine-User-Is-Admin": "0"}
    assert app.request(path, method=method, headers=headers, expect_errors=True).status_int == 403


def test_a_parked_task_is_replayed_through_the_push_queue(app, queue_stub):
    post_task(app, "/worker/push/replayed/ev", "", name="tp", extra={"X-Pusher-Socket-Id": "1.1"})
    assert app.post("/admin/parked/pusher__tp/replay", headers=ADMIN).json == {"replayed": ["pusher__tp"]}
    assert parked(app) == []
    [task] = queued(queue_stub)
    assert task.url == "/worker/push/replayed/ev" and task.headers["X-Pusher-Socket-Id"] == "1.1"
    assert "X-Pusher-Parked-Reason" not in task.headers


def test_replaying_everything(app, queue_stub):
    for name in ("ta", "tb"):
        post_task(app, "/worker/push/ch/ev", "", name=name)
    replayed = app.post("/admin/parked/replay", headers=ADMIN).json["replayed"]
    assert sorted(replayed) == ["pusher__ta", "pusher__tb"]
    assert len(queued(queue_stub)) == 2 and parked(app) == []


def test_replaying_an_unknown_task_gets_404_and_bad_limits_400(app):
    assert app.post("/admin/parked/nope/replay", headers=ADMIN, status=404).json["error"]
    assert "limit" in app.get("/admin/parked?limit=0", headers=ADMIN, status=400).json["error"]
    assert "limit" in app.post("/admin/parked/replay?limit=x", headers=ADMIN, status=400).json["error"]


# -- the recent task log -------------------------------------------------------------------


def test_the_task_log_shows_queued_and_settled_tasks(make_app, soketi, queue_stub):
    app = make_app(soketi.url, DEMO_MODE="1")
    name = app.post_json("/push/log-ch/log-ev", {"n": 1}).json["task"]
    run_all(app, queue_stub)
    entries = app.get("/tasks/recent?limit=2").json["tasks"]
    assert [(e["outcome"], e["task"], e["channel"], e["event"]) for e in entries] == [
        ("delivered", name, "log-ch", "log-ev"),
        ("queued", name, "log-ch", "log-ev"),
    ]
    assert entries[0]["pusher_status"] == 200


def test_the_task_log_is_for_the_demo_or_admins(app):
    assert app.get("/tasks/recent", status=403).json["error"]
    assert app.get("/tasks/recent", headers=ADMIN, status=200).json == {"tasks": []}
    assert app.get("/tasks/recent?limit=100000", headers=ADMIN, status=400).json["error"]


# -- logs ---------------------------------------------------------------------------------


def test_worker_logs_are_json_lines_without_the_secret(make_app, soketi, capsys):
    secret = "Wrong-Secret-7f3a"
    app = make_app(f"http://{soketi.key}:{secret}@127.0.0.1:{soketi.port}/apps/{soketi.app_id}")
    post_task(app, "/worker/push/ch/ev", name="tlog", retries=4, status=500)
    output = capsys.readouterr().out
    assert secret not in output and soketi.secret not in output
    entry = json.loads(output.strip().splitlines()[-1])
    assert entry["severity"] == "WARNING"
    assert (entry["task"], entry["retry_count"], entry["channel"], entry["event"]) == ("tlog", 4, "ch", "ev")
    assert (entry["outcome"], entry["pusher_status"]) == ("retried", 401)


# -- the seed's code, with one changed import ------------------------------------------------


def test_the_seeds_handler_code_runs_with_one_changed_import(make_app, soketi, queue_stub, subscriber):
    app = make_app(soketi.url, extra_groups=[seed_routes])
    subscriber.subscribe("channel")
    app.post("/seed", status=200)
    [task] = queued(queue_stub)
    assert (task.url, task.payload) == ("/worker/push/channel/event", b"msg=Hello+world%21")
    assert run_task(app, queue_stub, task).text == '{"outcome": "delivered"}'
    assert json.loads(subscriber.event("event", "channel")["data"]) == {"msg": "Hello world!"}


def test_taskqueue_add_returns_the_task_and_keeps_names_unique(app, queue_stub):
    task = taskqueue.add(url="/worker/push/ch/ev", payload='{"a": 1}', name="once", countdown=30)
    assert (task.name, task.queue_name, task.method) == ("once", QUEUE, "POST")
    with pytest.raises(taskqueue.TaskAlreadyExistsError):
        taskqueue.add(url="/worker/push/ch/ev", name="once")
    with pytest.raises(taskqueue.Error):
        taskqueue.add(url="/worker/push/ch/ev", queue_name="no-such-queue")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_a_task_for_the_worker_must_be_a_post(app, queue_stub, method):
    with pytest.raises(taskqueue.InvalidTaskError, match=f"POST tasks only; a {method} task"):
        taskqueue.add(url="/worker/push/ch/ev", method=method)
    assert queued(queue_stub) == []
    assert taskqueue.add(url="/elsewhere", method=method).method == method  # other URLs: any method


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/worker/push/ch/ev", "/worker/batch", "/worker/other"])
def test_a_task_of_another_method_is_parked_not_dropped(app, queue_stub, capsys, method, path):
    """A task added through the bundled API itself (which takes any method) reaches the
    worker: parked and logged, not answered 405 until the queue drops it."""
    headers = task_headers(f"t{method}")
    response = app.request(path, method=method, headers=headers, body=b"", expect_errors=True)
    assert response.status_int == 200
    [record] = parked(app)
    assert (record["method"], record["name"], record["url"]) == (method, f"pusher__t{method}", path)
    assert f"a {method} task cannot be served" in record["reason"]
    assert "pusher task parked" in capsys.readouterr().out


# -- coalescing: a request's events, flushed or dropped with the response ----------------------


@pytest.fixture
def event_queue(app, queue_stub):
    """The app's event queue (the testbed's stub), also pushqueue's default."""
    return pushqueue.default_queue()


def run_wsgi(app, status: str, *, before: int, after: int) -> list[str]:
    """Serve one request of a WSGI ``app`` that enqueues ``before`` events, starts its
    response with ``status``, then enqueues ``after`` more; the task names it was given."""
    names: list[str] = []

    def wsgi(environ, start_response):
        names.extend(pushqueue.enqueue_event("co", "ev", {"i": i}) for i in range(before))
        start_response(status, [("Content-Type", "text/plain")])
        names.extend(pushqueue.enqueue_event("co", "late", {"i": i}) for i in range(after))
        return [b""]

    middleware = pushqueue.CoalescingMiddleware(wsgi, app)
    list(middleware(webtest.TestRequest.blank("/").environ, lambda *args: None))
    return names


def test_an_event_enqueued_after_start_response_is_queued_at_once(event_queue, queue_stub):
    names = run_wsgi(event_queue, "200 OK", before=2, after=3)
    tasks = {task.name: task for task in queued(queue_stub)}
    assert set(names) <= set(tasks)  # every name handed out is a task
    late = [json.loads(tasks[name].payload) for name in names[2:]]
    assert late == [{"i": 0}, {"i": 1}, {"i": 2}]


@pytest.mark.parametrize("status", ["400 Bad Request", "403 Forbidden", "404 Not Found", "500 Server Error"])
def test_an_error_response_drops_the_requests_events(event_queue, queue_stub, capsys, status):
    run_wsgi(event_queue, status, before=3, after=0)
    assert queued(queue_stub) == []
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "events dropped: the request failed" and line["events"] == 3


def test_a_collecting_block_flushes_its_events_at_its_end(event_queue, queue_stub):
    with pushqueue.collecting() as pending:
        names = [pushqueue.enqueue_event("co", "ev", {"i": i}) for i in range(12)]
        assert queued(queue_stub) == [] and len(pending) == 12
    tasks = {task.name: task for task in queued(queue_stub)}
    assert set(tasks) == set(names) and len(tasks) == 2  # 10 + 2
    events = [event for name in dict.fromkeys(names) for event in json.loads(tasks[name].payload)]
    assert [json.loads(event["data"])["i"] for event in events] == list(range(12))


def test_a_collecting_block_ending_with_an_error_queues_nothing(event_queue, queue_stub):
    with pytest.raises(RuntimeError), pushqueue.collecting():
        pushqueue.enqueue_event("co", "ev", {"i": 0})
        raise RuntimeError("the request failed")
    assert queued(queue_stub) == []


def test_without_a_configured_queue_the_module_functions_say_so():
    pushqueue.configure(None)
    with pytest.raises(pushqueue.NotConfigured, match=r"pushqueue\.configure"):
        pushqueue.enqueue_event("co", "ev", {})
    with pytest.raises(pushqueue.NotConfigured):
        taskqueue.add(url="/worker/push/co/ev")


# -- PUSHER_TRANSPORT=ndb: the worker on google-cloud-ndb futures ------------------------------


def test_with_ndb_a_batch_tasks_chunks_are_in_flight_together(make_app, queue_stub):
    with FaultServer(default=Reply(200, b"{}", delay=2)) as pusher:
        app = make_app(fault_url(pusher.port), PUSHER_TRANSPORT="ndb")
        assert post_task(app, "/worker/batch", batch_body(30), status=200).json == {"outcome": "delivered"}
        assert pusher.request_count == 3 and pusher.max_in_flight == 3


def test_without_ndb_a_batch_tasks_chunks_are_sent_in_order(make_app, queue_stub):
    with FaultServer() as pusher:
        app = make_app(fault_url(pusher.port))
        post_task(app, "/worker/batch", batch_body(30), status=200)
        assert pusher.request_count == 3 and pusher.max_in_flight == 1


def test_with_ndb_chunks_settle_one_by_one(make_app, queue_stub):
    """In flight together, then each chunk settled as in order: the refused one sent again
    event by event and its bad event parked under its own name, the passing failure queued
    again, the delivered one not resent."""
    refused = Reply.json(400, {"error": "bad"})
    script = [refused, Reply(200), Reply.json(503, {"error": "busy"}), refused]
    with FaultServer(script) as pusher:
        app = make_app(fault_url(pusher.port), PUSHER_TRANSPORT="ndb")
        assert post_task(app, "/worker/batch", batch_body(30), name="tn").json["outcome"] == "parked"
        assert pusher.request_count == 13
    [record] = parked(app)
    [rest] = queued(queue_stub)
    assert record["name"].startswith("pusher__tn-")
    assert len(json.loads(record["body"])) == 1 and len(json.loads(rest.payload)) == 10


def test_with_ndb_one_event_reaches_a_subscriber(make_app, soketi, subscriber):
    app = make_app(soketi.url, PUSHER_TRANSPORT="ndb")
    subscriber.subscribe("ndb-one")
    assert post_task(app, "/worker/push/ndb-one/ev", '{"n": 1}').json == {"outcome": "delivered"}
    assert json.loads(subscriber.event("ev", "ndb-one")["data"]) == {"n": 1}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://other.appspot.com"},
    ],
)
def test_replays_and_deletions_asked_by_another_sites_page_are_refused(app, queue_stub, headers):
    post_task(app, "/worker/push/ch/ev", "", name="tcsrf")
    for method, path in [
        ("POST", "/admin/parked/replay"),
        ("POST", "/admin/parked/delete?all=1"),
        ("POST", "/admin/parked/pusher__tcsrf/replay"),
        ("DELETE", "/admin/parked/pusher__tcsrf"),
    ]:
        response = app.request(path, method=method, headers={**ADMIN, **headers}, expect_errors=True)
        assert response.status_int == 403 and "another site" in response.json["error"]
    assert [record["name"] for record in parked(app)] == ["pusher__tcsrf"] and queued(queue_stub) == []
    same_origin = {**ADMIN, "Origin": "http://localhost:80", "Sec-Fetch-Site": "same-origin"}
    assert app.post("/admin/parked/delete?all=1", headers=same_origin).json == {"deleted": ["pusher__tcsrf"]}


def test_the_admin_page_lists_parked_events_escaped_and_its_forms_come_back(app, queue_stub):
    post_task(app, "/worker/push/%3Cb%3Ech/ev", '"<script>alert(1)</script>"', name="tpage")
    page = app.get("/admin/parked/page?channel=%3Cb%3Ech", headers=ADMIN)
    assert (
        page.content_type == "text/html"
        and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    )
    assert "tpage" in page.text and "&lt;script&gt;" in page.text and "<script>" not in page.text
    assert "<b>ch" not in page.text and "&lt;b&gt;ch" in page.text
    form = next(f for f in page.forms.values() if f.action.startswith("/admin/parked/pusher__tpage/replay"))
    done = form.submit(headers=ADMIN, status=303)
    assert done.headers["Location"].endswith("/admin/parked/page?channel=%3Cb%3Ech")
    assert [task.name for task in queued(queue_stub)] == ["pusher__tpage-replay"] and parked(app) == []


def test_the_admin_page_withholds_encrypted_channels_data(app, queue_stub):
    post_task(app, "/worker/push/private-encrypted-x/ev", '{"secret": "plaintext"}', name="tenc")
    page = app.get("/admin/parked/page", headers=ADMIN).text
    assert "tenc" in page and "withheld" in page and "plaintext" not in page
    refused = app.get("/admin/parked/page", headers={"X-AppEngine-User-Is-Admin": "0"}, status=403)
    assert refused.content_type == "text/html" and "X-AppEngine-User-Is-Admin: 1" in refused.text
    assert "default-src 'none'" in refused.headers["Content-Security-Policy"]
