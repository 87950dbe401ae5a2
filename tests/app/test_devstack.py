"""`make dev`: scripts/devstack.py on free ports starts soketi, the Cloud Tasks emulator, the
Datastore emulator (where gcloud is installed) and the app, refuses a taken port by name, carries
a pushed event to a websocket subscriber through the queue, parks in Datastore, and leaves no
process behind on Ctrl-C, or on SIGTERM after its output pipe closed."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from pushqueue.datastore import NdbClients
from pushqueue.parking import DatastoreParking, ParkedFilter
from scripts.devstack import LOCAL_PUSH_TOKEN, signal_group
from scripts.gcloud_local import datastore_emulator_answers, datastore_emulator_missing
from tests.support.devstack import READY_LINE, DevStack, descendants, process_alive
from tests.support.processes import ROOT, port_open, wait_until
from tests.support.soketi import unique
from tests.support.subscriber import Subscriber

NO_DATASTORE = datastore_emulator_missing()
needs_datastore_emulator = pytest.mark.skipif(
    NO_DATASTORE is not None, reason=f"no Datastore emulator: {NO_DATASTORE}"
)

pytestmark = pytest.mark.emulator


EXPORTED_PUSHER_URL = "https://someone:else@api-eu.pusher.com/apps/9"


@pytest.fixture(scope="module")
def stack():
    # A PUSHER_URL left exported by the user: the stack says it ignores it, and works.
    with DevStack(env={"PUSHER_URL": EXPORTED_PUSHER_URL}) as devstack:
        yield devstack


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_every_part_answers_and_is_announced(stack):
    status, content_type, body = get(stack.app_url + "/")
    assert status == 200 and content_type.startswith("text/html")
    assert b"/static/vendor/pusher.min.js" in body
    status, _, body = get(f"http://127.0.0.1:{stack.ports['soketi']}/")
    assert status == 200
    assert port_open(stack.ports["tasks"])
    output = stack.output()
    for part in ("soketi", "tasks", "app"):
        assert f"{part:>8} | " in output, f"no log line prefixed by {part}"
    assert f"ws://127.0.0.1:{stack.ports['soketi']}" in output
    assert f"Cloud Tasks emulator on 127.0.0.1:{stack.ports['tasks']}" in output
    assert "ignoring PUSHER_URL from your environment" in output
    if NO_DATASTORE is None:
        assert "datastore | " in output
        assert f"Datastore emulator on 127.0.0.1:{stack.ports['datastore']}" in output
        assert datastore_emulator_answers(stack.ports["datastore"])


def test_the_page_gets_the_soketi_it_runs_with(stack):
    _, _, body = get(stack.app_url + "/demo/config.json")
    config = json.loads(body)
    soketi = ("devstack-key", "127.0.0.1", stack.ports["proxy"])  # through the demo fault proxy
    assert (config["key"], config["wsHost"], config["wsPort"]) == soketi
    assert config["forceTLS"] is False


def test_a_push_reaches_a_websocket_subscriber_through_the_queue(stack):
    with Subscriber(stack.ws_url, timeout=20) as subscriber:
        subscriber.subscribe("devstack-check")
        request = urllib.request.Request(
            stack.app_url + "/push/devstack-check/greeting",
            data=json.dumps({"hello": "through the queue"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {LOCAL_PUSH_TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
            task = json.loads(response.read())["task"]
        message = subscriber.event("greeting", "devstack-check")
    assert json.loads(message["data"]) == {"hello": "through the queue"}
    assert task


def test_soketi_sends_its_webhooks_to_the_app_which_accepts_them(stack):
    """The stack is wired: soketi signs webhooks with the app's secret and posts them to
    /pusher/webhooks, which checks them (a wrong key or signature would get 401)."""
    accepted = '"POST /pusher/webhooks HTTP/1.1" 200'
    before = stack.output().count(accepted)
    with Subscriber(stack.ws_url, timeout=20) as subscriber:
        subscriber.subscribe("devstack-webhook")  # channel_occupied
        wait_until(lambda: stack.output().count(accepted) > before, 30, "a webhook accepted by the app")


def test_encrypted_channels_work_out_of_the_box(stack):
    """A master key is set: the app signs private-encrypted- subscriptions with a shared secret."""
    with Subscriber(stack.ws_url, timeout=20) as subscriber:
        request = urllib.request.Request(
            stack.app_url + "/pusher/auth",
            data=urllib.parse.urlencode(
                {"socket_id": subscriber.socket_id, "channel_name": "private-encrypted-devstack"}
            ).encode(),
        )
        request.add_header("Cookie", "user=alice")  # the demo authorizer's user
        with urllib.request.urlopen(request, timeout=20) as response:
            answer = json.loads(response.read())
        assert set(answer) == {"auth", "shared_secret"}
        reply = subscriber.subscribe("private-encrypted-devstack", {"auth": answer["auth"]})
        assert reply["event"] == "pusher_internal:subscription_succeeded"


@pytest.mark.parametrize(
    ("role", "label"),
    [
        ("app", "app"),
        ("soketi", "soketi"),
        ("soketi_metrics", "soketi metrics"),
        ("tasks", "Cloud Tasks emulator"),
        ("proxy", "demo fault proxy"),
        pytest.param("datastore", "Datastore emulator", marks=needs_datastore_emulator),
    ],
)
def test_a_taken_port_is_named_and_nothing_starts(role, label):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        devstack = DevStack(name=f"devstack-port-taken-{role}", **{role: port})
        result = subprocess.run(devstack.argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"port {port} ({label}) is already in use" in result.stdout
    assert "starting" not in result.stdout


def test_a_part_that_cannot_start_stops_the_others():
    devstack = DevStack(name="devstack-broken-app", wsgi_app="no_such_module:app", with_datastore=False)
    result = subprocess.run(devstack.argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "cannot start: app exited" in result.stdout
    assert "stopped soketi" in result.stdout and "stopped tasks" in result.stdout
    for port in (devstack.ports["soketi"], devstack.ports["tasks"]):
        assert not port_open(port), f"port {port} still open"


def test_ctrl_c_stops_every_process_and_a_restart_at_once_works():
    """Its own stack: stopping the module's shared one would break the tests run after this.
    Connections open while it stops leave TIME_WAIT on its ports, which must not refuse a restart."""
    devstack = DevStack(name="devstack-restart", with_datastore=False)
    devstack.start()
    started = devstack.descendants()
    assert len(started) >= 5, "soketi, the proxy, the emulator, gunicorn and its worker"
    ports = devstack.ports
    held = [socket.create_connection(("127.0.0.1", ports[role]), timeout=10) for role in ("app", "soketi")]
    try:
        assert devstack.stop(signal.SIGINT) == 0
        wait_until(lambda: not any(process_alive(pid) for pid in started), 15, "every child gone")
        for port in (ports["app"], ports["soketi"], ports["tasks"], ports["proxy"]):
            assert not port_open(port), f"port {port} still open"
        assert "stopped soketi" in devstack.output()
    finally:
        for connection in held:
            connection.close()
    with DevStack(name="devstack-restarted", with_datastore=False, **ports) as again:
        status, _, _ = get(again.app_url + "/")
        assert status == 200


def test_sigterm_after_the_output_pipe_closed_stops_every_process_group():
    """Nobody reads devstack's output any more (a closed terminal, `make dev | head`): its next
    line must not abort the stop and leave the Java Datastore emulator and the others running."""
    devstack = DevStack(name="devstack-closed-pipe")
    process = subprocess.Popen(
        devstack.argv,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    groups: set[int] = set()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if READY_LINE in line:
                break
        else:
            pytest.fail(f"devstack exited with {process.wait()} before it was ready")
        groups = {os.getpgid(pid) for pid in descendants(process.pid)} - {process.pid}
        parts = {"soketi", "proxy", "tasks", "app"} | ({"datastore"} if NO_DATASTORE is None else set())
        assert len(groups) >= len(parts), f"a process group for each of {sorted(parts)}"
        process.stdout.close()  # the reader is gone: devstack's next line meets a broken pipe
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
        wait_until(lambda: not any(group_alive(group) for group in groups), 30, "every process group gone")
    finally:
        for group in groups | {process.pid}:  # what a failure left behind
            signal_group(group, signal.SIGKILL)
        process.wait()


def group_alive(group: int) -> bool:
    """A process of ``group`` still runs (zombies waiting to be reaped do not count)."""
    return any(pid_in_group(pid, group) for pid in alive_pids())


def alive_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and process_alive(int(entry))]


def pid_in_group(pid: int, group: int) -> bool:
    try:
        return os.getpgid(pid) == group
    except ProcessLookupError:
        return False


def post_form(url: str, **fields: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode())
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def push(stack: DevStack, channel: str, data: dict) -> str:
    request = urllib.request.Request(
        f"{stack.app_url}/push/{channel}/greeting",
        data=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {LOCAL_PUSH_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 202
        return json.loads(response.read())["task"]


def task_outcomes(stack: DevStack, task: str) -> list[str]:
    _, _, body = get(stack.app_url + "/tasks/recent?limit=200")
    return [entry["outcome"] for entry in json.loads(body)["tasks"] if entry["task"] == task]


def test_the_outage_control_retries_then_parks_and_delivery_resumes(stack):
    """The page's outage buttons: 503 from "Pusher" is retried, 400 parks, "off" delivers."""
    assert post_form(stack.app_url + "/demo/outage", mode="sideways")[0] == 400
    try:
        assert post_form(stack.app_url + "/demo/outage", mode="outage") == (200, {"mode": "outage"})
        retried = push(stack, "devstack-outage", {"n": 1})
        wait_until(lambda: "retried" in task_outcomes(stack, retried), 60, "a retry")
        assert post_form(stack.app_url + "/demo/outage", mode="permanent") == (200, {"mode": "permanent"})
        parked = push(stack, "devstack-outage", {"n": 2})
        wait_until(lambda: "parked" in task_outcomes(stack, parked), 60, "a parked task")
    finally:
        assert post_form(stack.app_url + "/demo/outage", mode="off") == (200, {"mode": "off"})
    with Subscriber(stack.ws_url, timeout=60) as subscriber:
        subscriber.subscribe("devstack-outage")
        push(stack, "devstack-outage", {"n": 3})
        assert json.loads(subscriber.event("greeting", "devstack-outage")["data"]) == {"n": 3}


@needs_datastore_emulator
def test_the_app_parks_in_the_stacks_datastore_emulator(stack):
    """As deployed: the admin page lists the parked event, and it is a Datastore entity."""
    channel = unique("devstack-park-")
    try:
        assert post_form(stack.app_url + "/demo/outage", mode="permanent") == (200, {"mode": "permanent"})
        parked = push(stack, channel, {"n": 1})
        wait_until(lambda: "parked" in task_outcomes(stack, parked), 60, "a parked task")
    finally:
        assert post_form(stack.app_url + "/demo/outage", mode="off") == (200, {"mode": "off"})
    listed = admin_parked(stack, channel)
    assert [entry["channels"] for entry in listed] == [[channel]]
    store = DatastoreParking(NdbClients("local-dev", f"127.0.0.1:{stack.ports['datastore']}"))
    in_datastore = store.page(ParkedFilter(channel=channel), limit=10).tasks
    assert [task.name for task in in_datastore] == [entry["name"] for entry in listed]


def admin_parked(stack: DevStack, channel: str) -> list[dict]:
    """The parked events of ``channel`` as /admin/parked lists them (the local admin header)."""
    request = urllib.request.Request(
        f"{stack.app_url}/admin/parked?channel={channel}", headers={"X-AppEngine-User-Is-Admin": "1"}
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())["parked"]


def test_purge_queue_deletes_a_task_the_app_keeps_refusing(stack):
    """A task for a URL the app answers 404 would be retried for days: --purge-queue ends it."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    channel = grpc.insecure_channel(f"127.0.0.1:{stack.ports['tasks']}")
    client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    queue = "projects/local-dev/locations/us-central1/queues/pusher"
    task = tasks_v2.Task(app_engine_http_request=tasks_v2.AppEngineHttpRequest(relative_uri="/no-such-page"))
    client.create_task(parent=queue, task=task)
    assert list(client.list_tasks(parent=queue))
    argv = [sys.executable, "scripts/devstack.py", "--tasks-port", str(stack.ports["tasks"]), "--purge-queue"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"purged {queue}" in result.stdout
    assert list(client.list_tasks(parent=queue)) == []


def test_help_lists_the_port_options():
    argv = [sys.executable, "scripts/devstack.py", "--help"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--app-port", "--soketi-port", "--tasks-port", "--soketi-metrics-port"):
        assert option in result.stdout


@pytest.fixture
def script(monkeypatch):
    """scripts/devstack.py loaded as a module, with no DEV_* variable set."""
    spec = importlib.util.spec_from_file_location("devstack_script", ROOT / "scripts" / "devstack.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    for name in [name for name in os.environ if name.startswith("DEV_")]:
        monkeypatch.delenv(name)
    return module


def test_without_gcloud_it_says_once_that_parked_events_stay_in_memory_and_goes_on(tmp_path):
    """No gcloud on PATH (node only): no Datastore part, one line saying so, and the app parks
    in its own memory."""
    (tmp_path / "node").symlink_to(shutil.which("node"))
    with DevStack(name="devstack-no-gcloud", env={"PATH": str(tmp_path)}) as stack:
        output = stack.output()
        assert output.count("no Datastore emulator:") == 1
        assert "the gcloud CLI is not on PATH" in output
        assert "starting datastore" not in output
        assert "datastore  none: parked events, outbox and webhook records stay in the app's memory" in output
        channel = unique("devstack-memory-")
        assert post_form(stack.app_url + "/demo/outage", mode="permanent")[0] == 200
        parked = push(stack, channel, {"n": 1})
        wait_until(lambda: "parked" in task_outcomes(stack, parked), 60, "a parked task")
        assert [entry["channels"] for entry in admin_parked(stack, channel)] == [[channel]]


def test_the_datastore_emulator_needs_its_gcloud_component_and_java(tmp_path, monkeypatch):
    """gcloud alone is not enough: the emulator component and Java are named when missing."""
    sdk_bin = tmp_path / "sdk" / "bin"
    sdk_bin.mkdir(parents=True)
    (sdk_bin / "gcloud").write_text("#!/bin/sh\n")
    (sdk_bin / "gcloud").chmod(0o755)
    monkeypatch.setenv("PATH", str(sdk_bin))
    assert "cloud-datastore-emulator is not installed" in datastore_emulator_missing()
    (tmp_path / "sdk" / "platform" / "cloud-datastore-emulator").mkdir(parents=True)
    assert "Java is not on PATH" in datastore_emulator_missing()
    (sdk_bin / "java").symlink_to(shutil.which("java") or "/bin/true")
    assert datastore_emulator_missing() is None


@needs_datastore_emulator
def test_with_gcloud_the_app_gets_the_datastore_emulator(script):
    args = script.parse_args(["--datastore-port", "8555"])
    parts = {part.name: part for part in script.build_parts(args)}
    assert parts["datastore"].ports == {"Datastore emulator": 8555}
    assert parts["app"].env["DATASTORE_EMULATOR_HOST"] == "127.0.0.1:8555"
    no_datastore = script.build_parts(script.parse_args(["--no-datastore"]))
    assert [part.name for part in no_datastore] == ["soketi", "proxy", "tasks", "app"]


def test_a_port_offset_moves_every_default_port(script, monkeypatch):
    """DEV_PORT_OFFSET: a second stack beside the first, no port shared (an explicit port wins)."""
    first = script.parse_args([])
    monkeypatch.setenv("DEV_PORT_OFFSET", "10")
    monkeypatch.setenv("DEV_TASKS_PORT", "9999")
    second = script.parse_args([])
    roles = ["app", "soketi", "soketi_metrics", "proxy", "tasks", "datastore"]
    ports = {role: (getattr(first, f"{role}_port"), getattr(second, f"{role}_port")) for role in roles}
    assert ports == {
        "app": (8080, 8090),
        "soketi": (6001, 6011),
        "soketi_metrics": (9601, 9611),
        "proxy": (6101, 6111),
        "tasks": (8123, 9999),
        "datastore": (8081, 8091),
    }
