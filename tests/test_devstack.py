"""`make dev`: scripts/devstack.py on free ports starts soketi, the Cloud Tasks emulator and the
app, refuses a taken port by name, carries a pushed event to a websocket subscriber through the
queue, and leaves no process behind on Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from scripts.devstack import LOCAL_PUSH_TOKEN
from tests.support.devstack import DevStack, process_alive
from tests.support.processes import ROOT, port_open, wait_until
from tests.support.subscriber import Subscriber

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def stack():
    with DevStack() as devstack:
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


def test_the_page_gets_the_soketi_it_runs_with(stack):
    _, _, body = get(stack.app_url + "/demo/config.json")
    config = json.loads(body)
    soketi = ("devstack-key", "127.0.0.1", stack.ports["soketi"])
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


@pytest.mark.parametrize(
    ("role", "label"),
    [
        ("app", "app"),
        ("soketi", "soketi"),
        ("soketi_metrics", "soketi metrics"),
        ("tasks", "Cloud Tasks emulator"),
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
    devstack = DevStack(name="devstack-broken-app", wsgi_app="no_such_module:app")
    result = subprocess.run(devstack.argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "cannot start: app exited" in result.stdout
    assert "stopped soketi" in result.stdout and "stopped tasks" in result.stdout
    for port in (devstack.ports["soketi"], devstack.ports["tasks"]):
        assert not port_open(port), f"port {port} still open"


def test_ctrl_c_stops_every_process_it_started(stack):
    started = stack.descendants()
    assert len(started) >= 4, "soketi, the emulator, gunicorn and its worker"
    assert stack.stop(signal.SIGINT) == 0
    wait_until(lambda: not any(process_alive(pid) for pid in started), 15, "every child gone")
    for port in (stack.ports["app"], stack.ports["soketi"], stack.ports["tasks"]):
        assert not port_open(port), f"port {port} still open"
    assert "stopped soketi" in stack.output()


def test_help_lists_the_port_options():
    argv = [sys.executable, "scripts/devstack.py", "--help"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--app-port", "--soketi-port", "--tasks-port", "--soketi-metrics-port"):
        assert option in result.stdout
