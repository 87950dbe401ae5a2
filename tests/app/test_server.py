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

from tests.support.appserver import APP_YAML, AppServer, entrypoint, running_stack, server_argv, tree_rss_kib
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


def app_yaml_variable(name: str) -> str:
    """The value of ``name`` in ``app.yaml``'s ``env_variables``."""
    for line in APP_YAML.read_text().splitlines():
        if line.strip().startswith(f"{name}:"):
            return shlex.split(line.split(":", 1)[1], comments=True)[0]
    raise KeyError(name)


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
    # One process (F1 and F2 have one CPU): worker tasks run on its event loop, other
    # requests on 8 threads; memory stays far below F1's 384 MB.
    assert (option("--workers"), app_yaml_variable("APP_THREADS")) == ("1", "8")
    # Bodies read at once (up to 1 MB each) are bounded by the bridge's admission, and each
    # connection granian holds (at most --backpressure) by its HTTP/1 buffer.
    bodies = int(app_yaml_variable("PROVEN_REQUESTS")) + int(app_yaml_variable("UNPROVEN_BODIES"))
    buffers_kib = int(option("--backpressure")) * int(option("--http1-buffer-size")) // 1024
    assert (bodies * 1024 + buffers_kib) * int(option("--workers")) <= F1_MEMORY_KIB // 2
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


def slow_body_head(path: str, length: int) -> bytes:
    """A request to ``path`` the app would accept (the publisher's token, the queue's header),
    its head and the first byte of its ``length``-byte JSON body."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PUBLISHER_TOKEN}\r\n"
        f"X-AppEngine-QueueName: pusher\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n{{"
    ).encode()


class DrippingBodies:
    """Connections that sent their headers and then send their bodies one byte a second,
    forever (until the server closes them or the block ends)."""

    def __init__(self, held: ExitStack, port: int, count: int, path: str):
        self.stopped = threading.Event()
        self.sockets = [
            held.enter_context(closing(socket.create_connection(("127.0.0.1", port)))) for _ in range(count)
        ]
        for slow in self.sockets:
            slow.sendall(slow_body_head(path, 100_000))
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()
        held.callback(self.stop)

    def _drip(self) -> None:
        open_sockets = list(self.sockets)
        while open_sockets and not self.stopped.wait(1):
            for slow in list(open_sockets):
                try:
                    slow.sendall(b" ")
                except OSError:  # answered 408 and closed: that one is over
                    open_sockets.remove(slow)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)


@pytest.mark.emulator
def test_queued_events_are_delivered_while_32_slow_clients_hold_connections(soketi, subscriber):
    """32 connections sending headers slowly and 12 dripping their bodies (more than the
    entrypoint's 8 threads), held open while events go the real path: POST /push, the Cloud
    Tasks emulator, the worker, soketi."""
    subscriber.subscribe("slow-clients")
    env = {"PUSHER_URL": soketi.url, **PUBLISHER, **LOCAL}
    with (
        ExitStack() as held,
        running_stack(env, workers=None, threads=None, name="app-slow-clients") as stack,
    ):
        for _ in range(32):
            slow = held.enter_context(closing(socket.create_connection(("127.0.0.1", stack.app.port))))
            slow.sendall(b"POST /push/slow-clients/ev HTTP/1.1\r\nHost: x\r\nContent-")
        DrippingBodies(held, stack.app.port, 12, "/push/slow-clients/ev")
        DrippingBodies(held, stack.app.port, 12, "/worker/push/slow-clients/ev")
        publisher = {"Authorization": f"Bearer {PUBLISHER_TOKEN}"}
        for number in range(20):
            answer = stack.app.client.post("/push/slow-clients/ev", json={"n": number}, headers=publisher)
            assert answer.status_code == 202, answer.text
        received = [json.loads(subscriber.event("ev", "slow-clients", timeout=30)["data"]) for _ in range(20)]
        assert sorted(event["n"] for event in received) == list(range(20))


def test_tasks_waiting_for_a_slow_pusher_hold_no_thread():
    """24 worker tasks (3 times the entrypoint's threads) wait for a Pusher that answers after
    3 s: they wait on the event loop, so a request served on a thread is answered at once,
    and every task is delivered."""
    with FaultServer(default=Reply(200, b"{}", delay=3)) as pusher:
        env = {"PUSHER_URL": pusher.pusher_url, "PUSHER_TIMEOUT": "15", **LOCAL}
        server = ExactEntrypoint(env, "entrypoint-slow-pusher")
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                answers: list[int] = []

                def task(number: int) -> None:
                    headers = {**QUEUE_HEADERS, "X-AppEngine-TaskName": f"slow-pusher-{number}"}
                    answer = client.post("/worker/push/slow-pusher/ev", json={"n": number}, headers=headers)
                    answers.append(answer.status_code)

                tasks = [threading.Thread(target=task, args=(number,)) for number in range(24)]
                for thread in tasks:
                    thread.start()
                wait_until(lambda: pusher.open_connections >= 16, 10, "16 triggers waiting for Pusher")
                warmup = client.get("/_ah/warmup", timeout=2)  # a webapp2 handler, on a thread
                assert warmup.status_code == 200
                assert len(answers) == 0  # every task is still waiting for Pusher
                for thread in tasks:
                    thread.join(60)
            assert answers == [200] * 24
            assert pusher.request_count == 24
        finally:
            server.stop()


def read_until_closed(connection: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    connection.settimeout(timeout)
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


def test_a_body_that_stalls_is_answered_408_and_the_connection_closed(soketi):
    assert float(app_yaml_variable("BODY_READ_TIMEOUT")) <= 30
    env = {"PUSHER_URL": soketi.url, **PUBLISHER, "BODY_READ_TIMEOUT": "2"}
    server = ExactEntrypoint(env, "entrypoint-slow-body")
    try:
        for path in ("/push/slow/ev", "/worker/push/slow/ev"):
            with closing(socket.create_connection(("127.0.0.1", server.port))) as slow:
                slow.sendall(slow_body_head(path, 100))
                answer = read_until_closed(slow, 60)  # returns once the server closed it
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert b"the body did not arrive within 2 s" in answer
    finally:
        server.stop()


def test_a_body_above_the_limit_is_answered_413_without_being_read(soketi):
    server = ExactEntrypoint({"PUSHER_URL": soketi.url}, "entrypoint-large-body")
    try:
        with closing(socket.create_connection(("127.0.0.1", server.port))) as large:
            # Declared: refused at once, none of it sent.
            large.sendall(
                b"POST /worker/push/big/ev HTTP/1.1\r\nHost: x\r\nX-AppEngine-QueueName: pusher\r\n"
                b"Content-Length: 2000000\r\n\r\n"
            )
            answer = read_until_closed(large, 60)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        with closing(socket.create_connection(("127.0.0.1", server.port))) as large:
            # Chunked, size unknown: refused once above 1 MB, the rest never read.
            large.sendall(
                b"POST /worker/push/big/ev HTTP/1.1\r\nHost: x\r\nX-AppEngine-QueueName: pusher\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            with contextlib.suppress(OSError):  # the server may close before all of it is sent
                for _ in range(17):  # 1.0625 MB, and the body is never finished
                    large.sendall(chunk)
            answer = read_until_closed(large, 60)
        assert answer.startswith(b"HTTP/1.1 413"), answer
    finally:
        server.stop()


def test_app_server_runs_the_entrypoint_with_the_counts_asked_for():
    argv = server_argv(entrypoint(), 8123, workers=1, threads=8)
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--workers") + 1] == "1"
    assert argv[-1] == "main:rsgi_app"
    server = AppServer({}, port=8123)
    assert server.argv == argv
    assert server.env["APP_THREADS"] == "8"  # the bridge's threads: a setting, not an option


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
