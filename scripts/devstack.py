"""The local stack behind `make dev`: soketi, the Cloud Tasks emulator and the app.

Starts the three parts, waits until each answers, prints what runs where, streams their
logs prefixed by part, and on Ctrl-C (SIGINT) or SIGTERM stops every process it started.
Standard library only, so it runs before anything else is involved.

Defaults (each overridable by the environment variable named in brackets):
soketi on 127.0.0.1:6001 [DEV_SOKETI_PORT] with app id 1 [PUSHER_APP_ID], key app-key
[PUSHER_KEY] and secret app-secret [PUSHER_SECRET]; its metrics on 9601 [DEV_SOKETI_METRICS_PORT];
the Cloud Tasks emulator on 8123 [DEV_TASKS_PORT] for project local-dev [GOOGLE_CLOUD_PROJECT]
in us-central1 [TASKS_LOCATION]; the app under gunicorn on 127.0.0.1:8080 [DEV_APP_PORT]
with DEMO_MODE=1, reloading on code changes. Command-line flags win over both.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SOKETI_SERVER = ROOT / "node_modules" / "@soketi" / "soketi" / "bin" / "server.js"
TASKS_EMULATOR = ROOT / ".venv-tasks-emulator" / "bin" / "gcloud-tasks-emulator"
QUEUE_YAML = ROOT / "queue.yaml"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
COLORS = {"soketi": "36", "tasks": "35", "app": "32"}


@dataclass
class Part:
    """One process of the stack: how to start it and how to tell that it answers."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ports: dict[str, int]  # what listens -> port
    answers: Callable[[], bool]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


class StartError(RuntimeError):
    """A part could not be started or did not answer."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The ports and credentials: flags, else environment variables, else the defaults."""
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--app-port", type=int, default=int(env.get("DEV_APP_PORT", 8080)))
    parser.add_argument("--soketi-port", type=int, default=int(env.get("DEV_SOKETI_PORT", 6001)))
    parser.add_argument(
        "--soketi-metrics-port", type=int, default=int(env.get("DEV_SOKETI_METRICS_PORT", 9601))
    )
    parser.add_argument("--tasks-port", type=int, default=int(env.get("DEV_TASKS_PORT", 8123)))
    parser.add_argument("--app-id", default=env.get("PUSHER_APP_ID") or "1")
    parser.add_argument("--key", default=env.get("PUSHER_KEY") or "app-key")
    parser.add_argument("--secret", default=env.get("PUSHER_SECRET") or "app-secret")
    parser.add_argument("--project", default=env.get("GOOGLE_CLOUD_PROJECT") or "local-dev")
    parser.add_argument("--location", default=env.get("TASKS_LOCATION") or "us-central1")
    parser.add_argument("--wsgi-app", default="main:app", help="the WSGI application gunicorn serves")
    return parser.parse_args(argv)


def build_parts(args: argparse.Namespace) -> list[Part]:
    """soketi, the Cloud Tasks emulator and the app, configured to talk to each other."""
    soketi_env = {
        "SOKETI_HOST": HOST,
        "SOKETI_PORT": str(args.soketi_port),
        "SOKETI_METRICS_SERVER_PORT": str(args.soketi_metrics_port),
        "SOKETI_DEFAULT_APP_ID": args.app_id,
        "SOKETI_DEFAULT_APP_KEY": args.key,
        "SOKETI_DEFAULT_APP_SECRET": args.secret,
        "SOKETI_DEFAULT_APP_USER_AUTHENTICATION": "true",
        "SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES": "true",
        "SOKETI_SHUTDOWN_GRACE_PERIOD": "0",
        "NODE_NO_WARNINGS": "1",  # not the AWS SDK's end-of-support notice at every start
    }
    tasks_argv = [
        str(TASKS_EMULATOR),
        "start",
        "-p",
        str(args.tasks_port),
        "-t",
        str(args.app_port),
        "-H",
        HOST,
        "-Q",
        str(QUEUE_YAML),
        "-P",
        args.project,
        "-L",
        args.location,
    ]
    app_env = {
        "PUSHER_URL": f"http://{args.key}:{args.secret}@{HOST}:{args.soketi_port}/apps/{args.app_id}",
        "TASKS_BACKEND": "cloudtasks",
        "GOOGLE_CLOUD_PROJECT": args.project,
        "TASKS_LOCATION": args.location,
        "CLOUD_TASKS_EMULATOR_HOST": f"{HOST}:{args.tasks_port}",
        "DEMO_MODE": "1",
        "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",  # the emulator's task headers carry no proof
    }
    app_argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{HOST}:{args.app_port}",
        "--reload",
        "--workers",
        "1",  # one process: the recent-task view lives in its memory
        "--threads",
        "8",
        "--graceful-timeout",
        "2",
        "--access-logfile",
        "-",
        "--no-control-socket",  # its default path is shared by every gunicorn of the user
        args.wsgi_app,
    ]
    python_env = {"PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore::FutureWarning"}
    return [
        Part(
            "soketi",
            ["node", str(SOKETI_SERVER), "start"],
            soketi_env,
            {"soketi": args.soketi_port, "soketi metrics": args.soketi_metrics_port},
            lambda: http_answers(args.soketi_port),
        ),
        Part(
            "tasks",
            tasks_argv,
            python_env,
            {"Cloud Tasks emulator": args.tasks_port},
            lambda: port_open(args.tasks_port),
        ),
        Part(
            "app",
            app_argv,
            {**python_env, **app_env},
            {"app": args.app_port},
            lambda: http_answers(args.app_port),
        ),
    ]


def port_open(port: int) -> bool:
    """Something accepts TCP connections on ``HOST:port``."""
    try:
        with socket.create_connection((HOST, port), timeout=0.3):
            return True
    except OSError:
        return False


def port_taken(port: int) -> bool:
    """The port cannot be used: something listens on it or holds it."""
    if port_open(port):
        return True
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def http_answers(port: int) -> bool:
    """An HTTP server answers ``GET /`` on ``HOST:port`` (with any status)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def preflight(parts: list[Part]) -> list[str]:
    """What prevents the stack from starting: missing installs, reused or taken ports."""
    problems = [
        f"{path.relative_to(ROOT)} is missing: run `make install` (or `make dev`, which installs it)"
        for path in (SOKETI_SERVER, TASKS_EMULATOR)
        if not path.exists()
    ]
    if not QUEUE_YAML.exists():
        problems.append("queue.yaml is missing: the Cloud Tasks emulator creates its queues from it")
    seen: dict[int, str] = {}
    for part in parts:
        for label, port in part.ports.items():
            if port in seen:
                problems.append(f"port {port} is given to both {seen[port]} and {label}")
            elif port_taken(port):
                problems.append(
                    f"port {port} ({label}) is already in use on {HOST}: stop what uses it "
                    "or choose another port (see --help)"
                )
            seen[port] = label
    return problems


class Stack:
    """The running parts: started in order, stopped together."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.stopping = threading.Event()
        self._print_lock = threading.Lock()
        self._color = sys.stdout.isatty()

    def say(self, line: str, name: str = "devstack") -> None:
        """Print ``line`` prefixed by the part it comes from."""
        prefix = f"{name:>8} |"
        if self._color:
            prefix = f"\033[{COLORS.get(name, '1')}m{prefix}\033[0m"
        with self._print_lock:
            print(f"{prefix} {line}", flush=True)

    def start(self, part: Part) -> None:
        """Start ``part`` in its own process group and wait until it answers."""
        self.say(f"starting {part.name}: {' '.join(part.argv)}")
        part.process = subprocess.Popen(
            part.argv,
            cwd=ROOT,
            env={**os.environ, **part.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole, not by the terminal
        )
        self.parts.append(part)
        threading.Thread(target=self._stream, args=(part,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not part.answers():
            if part.process.poll() is not None:
                raise StartError(f"{part.name} exited with status {part.process.returncode}")
            if self.stopping.is_set():
                raise StartError("stopped while starting")
            if time.monotonic() > deadline:
                raise StartError(f"{part.name} did not answer within {START_TIMEOUT:.0f} s")
            time.sleep(0.1)

    def _stream(self, part: Part) -> None:
        assert part.process is not None and part.process.stdout is not None
        for raw in iter(part.process.stdout.readline, b""):
            self.say(raw.decode(errors="replace").rstrip(), part.name)

    def run_until_stopped(self) -> int:
        """Wait for Ctrl-C/SIGTERM (exit status 0) or for a part to exit on its own (1)."""
        while not self.stopping.wait(0.2):
            for part in self.parts:
                if part.process is not None and part.process.poll() is not None:
                    self.say(f"{part.name} exited with status {part.process.returncode}; stopping")
                    return 1
        return 0

    def stop_all(self) -> None:
        """Stop every part's whole process group, the last started first."""
        for part in reversed(self.parts):
            if part.process is not None:
                stop_group(part.process)
                self.say(f"stopped {part.name}")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group led by ``process``, SIGKILL what is left after a while."""
    group = process.pid
    signal_group(group, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        signal_group(group, signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + STOP_TIMEOUT
    while signal_group(group, 0):  # children of the leader may still be exiting
        if time.monotonic() > deadline:
            signal_group(group, signal.SIGKILL)
        time.sleep(0.05)


def signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when the group has no process left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True


def summary(args: argparse.Namespace) -> list[str]:
    """The lines that say what runs where."""
    app = f"http://{HOST}:{args.app_port}"
    return [
        "ready. Open the demo page: " + app + "/",
        f"  app        {app}  ({args.wsgi_app} under gunicorn, DEMO_MODE=1, reloads on code changes)",
        f"  soketi     ws://{HOST}:{args.soketi_port}  HTTP API http://{HOST}:{args.soketi_port}"
        f"/apps/{args.app_id}  (key {args.key}; metrics on {args.soketi_metrics_port})",
        f"  tasks      Cloud Tasks emulator on {HOST}:{args.tasks_port}  (project {args.project}, "
        f"location {args.location}, queues of queue.yaml) -> POSTs tasks to {app}",
        "Press Ctrl-C to stop everything.",
    ]


def main(argv: list[str] | None = None) -> int:
    """Start the stack, wait for Ctrl-C, stop it; the exit status."""
    args = parse_args(argv)
    parts = build_parts(args)
    problems = preflight(parts)
    stack = Stack()
    if problems:
        for problem in problems:
            stack.say(f"cannot start: {problem}")
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stack.stopping.set())
    try:
        for part in parts:
            stack.start(part)
        for line in summary(args):
            stack.say(line)
        status = stack.run_until_stopped()
    except StartError as exc:
        stack.say(f"cannot start: {exc}")
        status = 0 if stack.stopping.is_set() else 1
    finally:
        stack.say("stopping")
        stack.stop_all()
    return status


if __name__ == "__main__":
    sys.exit(main())
