"""The server of ``app.yaml``'s entrypoint, run exactly as App Engine starts it.

App Engine starts the entrypoint with ``$PORT`` set, sends SIGTERM when it stops an
instance, reads the logs from stdout, and (through its front end) buffers requests. These
tests start the same command line and check each of those, plus what holds where nothing
buffers in front: headers must arrive within a bound, and slow clients do not stop the
queue's tasks from being delivered.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from contextlib import ExitStack, closing
from pathlib import Path

import httpx
import pytest

from tests.support.appserver import AppServer, entrypoint, running_stack, server_argv, tree_rss_kib
from tests.support.fault_server import FaultServer, Reply
from tests.support.processes import OUTPUT, ROOT, free_port, port_open, wait_until

QUEUE_HEADERS = {"X-AppEngine-QueueName": "pusher", "X-AppEngine-TaskName": "server-test"}
LOCAL = {"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1", "GOOGLE_CLOUD_PROJECT": "test-project"}
F1_MEMORY_KIB = 384 * 1024
PUBLISHER_TOKEN = "server-test-publisher-token-0123456789"  # PUSH_TOKENS: name:token, 32+ chars
PUBLISHER = {"PUSH_TOKENS": f"tests:{PUBLISHER_TOKEN}"}


def option(name: str) -> str:
    """The value of ``name`` in the entrypoint's command line."""
    words = shlex.split(entrypoint())
    return words[words.index(name) + 1]


class ExactEntrypoint:
    """The entrypoint as App Engine runs it (``$PORT`` from the environment, its own process
    and thread counts), its stdout and stderr in separate files."""

    def __init__(self, env: dict[str, str], name: str):
        self.port = free_port()
        OUTPUT.mkdir(exist_ok=True)
        self.stdout, self.stderr = OUTPUT / f"{name}.stdout", OUTPUT / f"{name}.stderr"
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the servers
        environ = {**os.environ, "PATH": path, **LOCAL, **env, "PORT": str(self.port)}
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen(
                ["sh", "-c", "exec " + entrypoint()],
                env=environ,
                stdout=out,
                stderr=err,
                cwd=ROOT,
                start_new_session=True,  # its own process group: stop() ends the workers too
            )
        try:
            wait_until(self.answers, 60, "the entrypoint")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the entrypoint exited with {self.process.returncode}: {self.stderr}")
        return port_open(self.port) and httpx.get(self.url + "/_ah/warmup", timeout=5).status_code == 200

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole process group: granian's worker processes
        outlive a master that is killed, so they are stopped with it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses listening on ``port`` (from ``/proc/net/tcp``)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.fixture
def slow_pusher():
    """A Pusher stand-in answering 200 after 2 s: a task stays in flight that long."""
    with FaultServer(default=Reply.json(200, {}, delay=2)) as server:
        yield server


def test_the_entrypoint_serves_main_app_on_port_on_every_interface(soketi):
    server = ExactEntrypoint({"PUSHER_URL": soketi.url}, "entrypoint-port")
    try:
        assert listening_addresses(server.port) == {"0.0.0.0"}
        answer = httpx.post(
            f"{server.url}/worker/push/entrypoint/ev", json={"n": 1}, headers=QUEUE_HEADERS, timeout=10
        )
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()


def test_sigterm_lets_the_task_in_flight_finish_then_exits_0(slow_pusher):
    server = ExactEntrypoint({"PUSHER_URL": slow_pusher.pusher_url}, "entrypoint-sigterm")
    answers: list[httpx.Response] = []
    try:
        sender = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{server.url}/worker/push/c/e", json={"n": 1}, headers=QUEUE_HEADERS, timeout=30)
            )
        )
        sender.start()
        wait_until(lambda: slow_pusher.request_count == 1, 30, "the task reaching Pusher")
        server.process.send_signal(signal.SIGTERM)
        sender.join(timeout=30)
        assert [(a.status_code, a.json()["outcome"]) for a in answers] == [(200, "delivered")]
        assert server.process.wait(timeout=30) == 0
        assert not port_open(server.port)
    finally:
        server.stop()


def test_the_apps_log_lines_go_to_stdout(soketi):
    server = ExactEntrypoint({"PUSHER_URL": soketi.url}, "entrypoint-stdout")
    try:
        headers = {**QUEUE_HEADERS, "X-AppEngine-TaskName": "logged-task"}
        answer = httpx.post(f"{server.url}/worker/push/logs/ev", json={"n": 1}, headers=headers, timeout=10)
        assert answer.status_code == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.stdout.read_text().splitlines() if line.startswith("{")]
    assert [(line["task"], line["outcome"]) for line in lines if line.get("task") == "logged-task"] == [
        ("logged-task", "delivered")
    ]
    assert "logged-task" not in server.stderr.read_text()


def test_processes_threads_and_memory_suit_an_f1_instance(soketi):
    # 2 processes of 4 threads: the 8 tasks in flight the benchmarks measure, and what
    # App Engine recommends for F1/F2 (2 workers); memory stays far below F1's 384 MB.
    assert (option("--workers"), option("--blocking-threads")) == ("2", "4")
    server = ExactEntrypoint({"PUSHER_URL": soketi.url}, "entrypoint-memory")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for number in range(200):
                answer = client.post("/worker/push/memory/ev", json={"n": number}, headers=QUEUE_HEADERS)
                assert answer.status_code == 200
        assert tree_rss_kib(server.process.pid) < F1_MEMORY_KIB // 2
    finally:
        server.stop()


def test_headers_that_never_finish_are_cut_off(soketi):
    bound_ms = int(option("--http1-header-read-timeout"))
    assert bound_ms <= 10_000
    server = ExactEntrypoint({"PUSHER_URL": soketi.url}, "entrypoint-slow-headers")
    try:
        with closing(socket.create_connection(("127.0.0.1", server.port))) as slow:
            slow.sendall(b"POST /push/a/b HTTP/1.1\r\nHost: x\r\n")
            slow.settimeout(bound_ms / 1000 + 60)
            answer = slow.recv(1024)  # the server answers 408 or closes: either ends the wait
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    finally:
        server.stop()


@pytest.mark.emulator
def test_queued_events_are_delivered_while_32_slow_clients_hold_connections(soketi, subscriber):
    """32 connections sending headers slowly and 3 sending a body slowly, held open while
    events go the real path: POST /push, the Cloud Tasks emulator, the worker, soketi."""
    subscriber.subscribe("slow-clients")
    env = {"PUSHER_URL": soketi.url, **PUBLISHER, **LOCAL}
    with (
        ExitStack() as held,
        running_stack(env, workers=None, threads=None, name="app-slow-clients") as stack,
    ):
        for number in range(35):
            slow = held.enter_context(closing(socket.create_connection(("127.0.0.1", stack.app.port))))
            if number < 32:
                slow.sendall(b"POST /push/slow-clients/ev HTTP/1.1\r\nHost: x\r\nContent-")
            else:
                slow.sendall(
                    b"POST /push/slow-clients/ev HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
                )
        publisher = {"Authorization": f"Bearer {PUBLISHER_TOKEN}"}
        for number in range(20):
            answer = stack.app.client.post("/push/slow-clients/ev", json={"n": number}, headers=publisher)
            assert answer.status_code == 202, answer.text
        received = [json.loads(subscriber.event("ev", "slow-clients", timeout=30)["data"]) for _ in range(20)]
        assert sorted(event["n"] for event in received) == list(range(20))


def test_app_server_runs_the_entrypoint_with_the_counts_asked_for():
    argv = server_argv(entrypoint(), 8123, workers=1, threads=8)
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--workers") + 1] == "1"
    assert argv[argv.index("--blocking-threads") + 1] == "8"
    assert argv[-1] == "main:app"
    assert AppServer({}, port=8123).argv == argv


def test_a_client_leaving_in_the_middle_of_its_body_is_no_server_error(soketi):
    server = ExactEntrypoint({"PUSHER_URL": soketi.url, **PUBLISHER}, "entrypoint-gone")
    try:
        for path in ("/push/gone/ev", "/worker/push/gone/ev"):
            with closing(socket.create_connection(("127.0.0.1", server.port))) as leaving:
                leaving.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nX-AppEngine-QueueName: pusher\r\n"
                    f"Authorization: Bearer {PUBLISHER_TOKEN}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 100\r\n\r\n{".encode()
                )
        dropped = '"message": "request dropped: the client went away"'
        wait_until(lambda: server.stdout.read_text().count(dropped) == 2, 30, "both requests dropped")
        assert "unhandled error" not in server.stdout.read_text()
    finally:
        server.stop()
