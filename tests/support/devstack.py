"""`make dev`'s stack (scripts/devstack.py) started by the tests on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .processes import OUTPUT, ROOT, forget, free_port, stop_on_exit, wait_until

DEVSTACK = ROOT / "scripts" / "devstack.py"
READY_LINE = "ready. Open the demo page"


class DevStack:
    """One run of ``scripts/devstack.py`` with its output collected (and copied to test-output/)."""

    def __init__(
        self,
        name: str = "devstack",
        wsgi_app: str = "main:app",
        max_attempts: int = 3,
        env: dict[str, str] | None = None,
        with_datastore: bool = True,
        **ports: int,
    ):
        """``with_datastore=False``: with ``--no-datastore`` (a stack that starts faster)."""
        self.wsgi_app, self.max_attempts, self.extra_env = wsgi_app, max_attempts, env or {}
        self.with_datastore = with_datastore
        self.ports = {
            "app": free_port(),
            "soketi": free_port(),
            "soketi_metrics": free_port(),
            "proxy": free_port(),
            "tasks": free_port(),
            "datastore": free_port(),
            **ports,
        }
        self.key, self.secret, self.app_id = "devstack-key", "devstack-secret", "77"
        self.log_path: Path = OUTPUT / f"{name}.log"
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    @property
    def argv(self) -> list[str]:
        return [
            sys.executable,
            str(DEVSTACK),
            "--app-port",
            str(self.ports["app"]),
            "--soketi-port",
            str(self.ports["soketi"]),
            "--soketi-metrics-port",
            str(self.ports["soketi_metrics"]),
            "--tasks-port",
            str(self.ports["tasks"]),
            "--proxy-port",
            str(self.ports["proxy"]),
            "--app-id",
            self.app_id,
            "--key",
            self.key,
            "--secret",
            self.secret,
            "--wsgi-app",
            self.wsgi_app,
            "--max-attempts",
            str(self.max_attempts),
            "--datastore-port",
            str(self.ports["datastore"]),
            *([] if self.with_datastore else ["--no-datastore"]),
        ]

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['app']}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports['soketi']}/app/{self.key}?protocol=7&client=pytest&version=1.0"

    def start(self, timeout: float = 180) -> None:
        """Start it and wait for its "ready" line; fail (after stopping it) if it exits first."""
        OUTPUT.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSHER_", "DEV_"))}
        env.update(self.extra_env)
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # not stopped by the terminal's Ctrl-C; the tests stop it
        )
        stop_on_exit(self.process.pid, self.stop)
        threading.Thread(target=self._collect, daemon=True).start()
        try:
            wait_until(self._ready, timeout, "devstack")
        except (TimeoutError, RuntimeError):
            self.stop()
            raise

    def _collect(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with open(self.log_path, "a") as log:
            for line in self.process.stdout:
                self.lines.append(line)
                log.write(line)
                log.flush()

    def _ready(self) -> bool:
        if any(READY_LINE in line for line in self.lines):
            return True
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"devstack exited with {self.process.returncode}; see {self.log_path}")
        return False

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, signum: int = signal.SIGINT, timeout: float = 60) -> int:
        """Send ``signum`` (Ctrl-C by default) and wait for devstack to exit; return its status."""
        if self.process is None:
            raise RuntimeError("devstack was not started")
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        forget(self.process.pid)
        return self.process.returncode

    def __enter__(self) -> DevStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def descendants(self) -> set[int]:
        """Every process started by devstack (children, grandchildren, ...) right now."""
        assert self.process is not None
        return descendants(self.process.pid)


def descendants(root: int) -> set[int]:
    """Every process below ``root`` (children, grandchildren, ...) right now."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def process_alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
