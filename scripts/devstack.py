"""The local stack behind `make dev`: soketi, the Cloud Tasks emulator, the Datastore emulator
and the app.

Starts the parts, waits until each answers, prints what runs where, streams their logs
prefixed by part, and on Ctrl-C (SIGINT) or SIGTERM stops every process it started.
Standard library only, so it runs before anything else is involved (``--purge-queue``
alone uses the project's google-cloud-tasks). Whatever happens to its own output (a closed
terminal or pipe), it still stops everything.

Defaults (each overridable by the environment variable named in brackets):
soketi on 127.0.0.1:6001 [DEV_SOKETI_PORT] with app id 1 [PUSHER_APP_ID], key app-key
[PUSHER_KEY] and secret app-secret [PUSHER_SECRET]; its metrics on 9601 [DEV_SOKETI_METRICS_PORT];
the demo's fault proxy in front of soketi on 6101 [DEV_PROXY_PORT] (the app and the page reach
soketi through it, so the page can simulate an outage); the Cloud Tasks emulator on 8123
[DEV_TASKS_PORT] for project local-dev [GOOGLE_CLOUD_PROJECT] in us-central1 [TASKS_LOCATION];
where the gcloud CLI, its Datastore emulator and Java are installed, the Datastore emulator
(in memory) on 8081 [DEV_DATASTORE_PORT] for the parked events, the transactional outbox and
the webhook replay records, as deployed (without them, or with --no-datastore, those stay in
the app's memory);
the app under gunicorn on 127.0.0.1:8080 [DEV_APP_PORT] with DEMO_MODE=1, a task parked at its
10th failed attempt [PUSHER_MAX_ATTEMPTS] (about 10 s of simulated outage), reloading on code
changes. soketi sends its webhooks to the app's /pusher/webhooks, and an encryption master key
is set, so encrypted channels work.
DEV_PORT_OFFSET=N [--port-offset] adds N to every default port: a second stack beside the first.
Command-line flags win over both.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

try:  # run as a script: scripts/ is on sys.path
    from gcloud_local import (
        datastore_emulator_answers,
        datastore_emulator_command,
        datastore_emulator_missing,
    )
except ImportError:  # imported as scripts.devstack (the tests)
    from scripts.gcloud_local import (
        datastore_emulator_answers,
        datastore_emulator_command,
        datastore_emulator_missing,
    )

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PROXY_SCRIPT = ROOT / "scripts" / "demo_fault_proxy.py"
SOKETI_SERVER = ROOT / "node_modules" / "@soketi" / "soketi" / "bin" / "server.js"
# The local publisher token: POST /push needs one (PUSH_TOKENS); it proves nothing anywhere else.
LOCAL_PUSH_TOKEN = "local-development-only-push-token"
TASKS_EMULATOR = ROOT / ".venv-tasks-emulator" / "bin" / "gcloud-tasks-emulator"
QUEUE_YAML = ROOT / "queue.yaml"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
COLORS = {"soketi": "36", "proxy": "34", "tasks": "35", "datastore": "33", "app": "32"}
DEFAULT_PORTS = {
    "app": 8080,
    "soketi": 6001,
    "soketi_metrics": 9601,
    "proxy": 6101,
    "tasks": 8123,
    "datastore": 8081,
}
#: A fixed, public key for local development only (32 bytes, base64): encrypted channels work.
DEV_ENCRYPTION_MASTER_KEY = "ZGV2LW9ubHktbWFzdGVyLWtleS1ub3QtYS1zZWNyZXQ="
WEBHOOK_EVENTS = ["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event"]
#: App log lines not worth showing: the demo page polls the task log (every 1 to 5 s).
QUIET_APP_LINES = ("GET /tasks/recent",)


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
    parser.add_argument(
        "--port-offset",
        type=int,
        default=int(env.get("DEV_PORT_OFFSET") or 0),
        help="added to every default port (a second stack: --port-offset 10)",
    )
    for role in DEFAULT_PORTS:
        parser.add_argument(f"--{role.replace('_', '-')}-port", type=int, default=None)
    parser.add_argument("--app-id", default=env.get("PUSHER_APP_ID") or "1")
    parser.add_argument("--key", default=env.get("PUSHER_KEY") or "app-key")
    parser.add_argument("--secret", default=env.get("PUSHER_SECRET") or "app-secret")
    parser.add_argument("--project", default=env.get("GOOGLE_CLOUD_PROJECT") or "local-dev")
    parser.add_argument("--location", default=env.get("TASKS_LOCATION") or "us-central1")
    parser.add_argument(
        "--max-attempts",
        default=env.get("PUSHER_MAX_ATTEMPTS") or "10",
        help="the attempt at which the worker parks a task",
    )
    parser.add_argument("--wsgi-app", default="main:app", help="the WSGI application gunicorn serves")
    parser.add_argument(
        "--no-datastore",
        action="store_true",
        help="no Datastore emulator: parked events, the outbox and webhook records stay in the app's memory",
    )
    parser.add_argument(
        "--purge-queue",
        metavar="QUEUE",
        nargs="?",
        const="pusher",
        help="delete every task of QUEUE (default: pusher) in the running stack's emulator, and exit",
    )
    args = parser.parse_args(argv)
    for role, default in DEFAULT_PORTS.items():
        if getattr(args, f"{role}_port") is None:
            from_env = env.get(f"DEV_{role.upper()}_PORT")
            setattr(args, f"{role}_port", int(from_env) if from_env else default + args.port_offset)
    args.no_datastore_reason = "--no-datastore" if args.no_datastore else datastore_emulator_missing()
    return args


def build_parts(args: argparse.Namespace) -> list[Part]:
    """The Datastore emulator (unless ``args.no_datastore_reason``), soketi, the Cloud Tasks
    emulator and the app, configured to talk to each other."""
    soketi_env = {
        "SOKETI_HOST": HOST,
        "SOKETI_PORT": str(args.soketi_port),
        "SOKETI_METRICS_SERVER_PORT": str(args.soketi_metrics_port),
        "SOKETI_DEFAULT_APP_ID": args.app_id,
        "SOKETI_DEFAULT_APP_KEY": args.key,
        "SOKETI_DEFAULT_APP_SECRET": args.secret,
        "SOKETI_DEFAULT_APP_USER_AUTHENTICATION": "true",
        "SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES": "true",
        "SOKETI_DEFAULT_APP_WEBHOOKS": json.dumps(
            [{"url": f"http://{HOST}:{args.app_port}/pusher/webhooks", "event_types": WEBHOOK_EVENTS}]
        ),
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
        "PUSHER_URL": f"http://{args.key}:{args.secret}@{HOST}:{args.proxy_port}/apps/{args.app_id}",
        "PUSHER_ENCRYPTION_MASTER_KEY_BASE64": DEV_ENCRYPTION_MASTER_KEY,
        "PUSHER_MAX_ATTEMPTS": str(args.max_attempts),
        "TASKS_BACKEND": "cloudtasks",
        "GOOGLE_CLOUD_PROJECT": args.project,
        "TASKS_LOCATION": args.location,
        "CLOUD_TASKS_EMULATOR_HOST": f"{HOST}:{args.tasks_port}",
        "DEMO_MODE": "1",
        "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",  # the emulator's task headers carry no proof
        "PUSH_TOKENS": f"local-dev:{LOCAL_PUSH_TOKEN}",
    }
    parts: list[Part] = []
    if args.no_datastore_reason is None:
        parts.append(datastore_part(args.datastore_port, args.project))
        app_env["DATASTORE_EMULATOR_HOST"] = f"{HOST}:{args.datastore_port}"
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
        *parts,
        Part(
            "soketi",
            ["node", str(SOKETI_SERVER), "start"],
            soketi_env,
            {"soketi": args.soketi_port, "soketi metrics": args.soketi_metrics_port},
            lambda: http_answers(args.soketi_port),
        ),
        Part(
            "proxy",
            [
                sys.executable,
                str(PROXY_SCRIPT),
                "--port",
                str(args.proxy_port),
                "--upstream-port",
                str(args.soketi_port),
            ],
            python_env,
            {"demo fault proxy": args.proxy_port},
            lambda: port_open(args.proxy_port),
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


def datastore_part(port: int, project: str) -> Part:
    """The Datastore emulator (from the gcloud CLI), in memory, on ``HOST:port``."""
    argv, env = datastore_emulator_command(port, project)
    return Part(
        "datastore", argv, env, {"Datastore emulator": port}, lambda: datastore_emulator_answers(port)
    )


def port_open(port: int) -> bool:
    """Something accepts TCP connections on ``HOST:port``."""
    try:
        with socket.create_connection((HOST, port), timeout=0.3):
            return True
    except OSError:
        return False


def port_taken(port: int) -> bool:
    """The port cannot be used: something listens on it or holds it. Connections of a stack
    that just stopped (TIME_WAIT) do not count: the servers bind with SO_REUSEADDR too."""
    if port_open(port):
        return True
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
                    "or start a second stack beside it with DEV_PORT_OFFSET=10 make dev (see --help)"
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
        self._output_gone = False

    def say(self, line: str, name: str = "devstack") -> None:
        """Print ``line`` prefixed by the part it comes from. Once nobody reads the output (a
        closed terminal or pipe), lines are dropped: stopping the stack must go on."""
        prefix = f"{name:>8} |"
        if self._color:
            prefix = f"\033[{COLORS.get(name, '1')}m{prefix}\033[0m"
        with self._print_lock:
            if self._output_gone:
                return
            try:
                print(f"{prefix} {line}", flush=True)
            except OSError:  # BrokenPipeError, or EIO from a closed terminal
                self._output_gone = True
                discard_stdout()

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
            if any(quiet.encode() in raw for quiet in QUIET_APP_LINES):
                continue
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


def discard_stdout() -> None:
    """Point this process's standard output at the null device: what is still buffered, and
    the flush at exit, go nowhere instead of raising again."""
    with suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


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


def ignored_settings(env: Mapping[str, str]) -> list[str]:
    """A line for each exported variable the stack overrides (its app talks to its own soketi)."""
    return [
        f"ignoring {name} from your environment: the stack's app uses its own soketi "
        "(set PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET or --app-id/--key/--secret for its credentials)"
        for name in ("PUSHER_URL", "PUSHER_HOST", "PUSHER_PORT", "PUSHER_CLUSTER", "PUSHER_SSL")
        if env.get(name)
    ]


def summary(args: argparse.Namespace) -> list[str]:
    """The lines that say what runs where."""
    app = f"http://{HOST}:{args.app_port}"
    return [
        "ready. Open the demo page: " + app + "/",
        f"  app        {app}  ({args.wsgi_app} under gunicorn, DEMO_MODE=1, reloads on code changes)",
        f"  soketi     ws://{HOST}:{args.soketi_port}  HTTP API http://{HOST}:{args.soketi_port}"
        f"/apps/{args.app_id}  (key {args.key}; metrics on {args.soketi_metrics_port})",
        f"  proxy      demo fault proxy on {HOST}:{args.proxy_port} in front of soketi "
        "(the app's PUSHER_URL and the page's websocket; the page's outage buttons arm it)",
        f"  tasks      Cloud Tasks emulator on {HOST}:{args.tasks_port}  (project {args.project}, "
        f"location {args.location}, queues of queue.yaml) -> POSTs tasks to {app}",
        datastore_summary(args),
        f"  a task is parked at its attempt {args.max_attempts} (PUSHER_MAX_ATTEMPTS); soketi's "
        f"webhooks go to {app}/pusher/webhooks",
        "Your own code against this stack: "
        f"PUSHER_URL=http://{args.key}:{args.secret}@{HOST}:{args.soketi_port}/apps/{args.app_id} "
        f"GOOGLE_CLOUD_PROJECT={args.project} CLOUD_TASKS_EMULATOR_HOST={HOST}:{args.tasks_port}"
        + ("" if args.no_datastore_reason else f" DATASTORE_EMULATOR_HOST={HOST}:{args.datastore_port}"),
        f"  publish    curl -H 'Authorization: Bearer {LOCAL_PUSH_TOKEN}' -H 'Content-Type: application/json'"
        f" -d '{{\"n\": 1}}' {app}/push/my-channel/my-event",
        "Press Ctrl-C to stop everything.",
    ]


def datastore_summary(args: argparse.Namespace) -> str:
    """The summary's line on where parked events, the outbox and webhook records live."""
    if args.no_datastore_reason is None:
        return (
            f"  datastore  Datastore emulator on {HOST}:{args.datastore_port} (project {args.project}, "
            "in memory: parked events, outbox, webhook records, as deployed)"
        )
    return "  datastore  none: parked events, outbox and webhook records stay in the app's memory"


def purge_queue(args: argparse.Namespace) -> int:
    """Delete every task of ``args.purge_queue`` in the emulator on ``args.tasks_port``."""
    try:
        import grpc
        from google.cloud import tasks_v2
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport
    except ImportError:
        print("--purge-queue needs google-cloud-tasks: run it with .venv/bin/python (make purge-queue)")
        return 2
    name = f"projects/{args.project}/locations/{args.location}/queues/{args.purge_queue}"
    channel = grpc.insecure_channel(f"{HOST}:{args.tasks_port}")
    client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    try:
        client.purge_queue(name=name, timeout=10)
    except Exception as exc:  # the emulator is not running, or no such queue
        print(f"could not purge {name} on {HOST}:{args.tasks_port}: {exc}")
        return 1
    print(f"purged {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Start the stack, wait for Ctrl-C, stop it; the exit status."""
    args = parse_args(argv)
    if args.purge_queue:
        return purge_queue(args)
    parts = build_parts(args)
    problems = preflight(parts)
    stack = Stack()
    if problems:
        for problem in problems:
            stack.say(f"cannot start: {problem}")
        return 2
    for line in ignored_settings(os.environ):
        stack.say(line)
    if args.no_datastore_reason not in (None, "--no-datastore"):
        stack.say(
            "no Datastore emulator: parked events, the outbox and webhook records stay in the "
            f"app's memory and are lost at a restart ({args.no_datastore_reason})"
        )
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
