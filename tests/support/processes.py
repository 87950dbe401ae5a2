"""Starting and stopping the real servers the tests talk to.

Each server runs in its own process group (its own session), and the whole group is stopped:
at the end of its fixture, at the interpreter's exit, and when pytest itself gets SIGTERM or
SIGHUP (nothing is left running when CI or a terminal ends the run).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A TCP port nobody listens on right now, never one given before in this process (the
    system may hand a freed port out again at once: two parts of one stack would collide)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


STOP_TIMEOUT = 10.0
#: How to stop each child running now: called on exit and on SIGTERM/SIGHUP to pytest.
_RUNNING: dict[int, Callable[[], None]] = {}


def stop_on_exit(pid: int, stop: Callable[[], None]) -> None:
    """Remember how to stop the child ``pid`` if the run ends before its fixture does."""
    _RUNNING[pid] = stop


def forget(pid: int) -> None:
    """The child ``pid`` was stopped by its owner."""
    _RUNNING.pop(pid, None)


def stop_everything() -> None:
    """Stop every child still running (the last started first)."""
    for pid in reversed(list(_RUNNING)):
        stop = _RUNNING.pop(pid, None)
        if stop is not None:
            stop()


def _on_signal(signum: int, frame: object) -> None:
    stop_everything()
    signal.signal(signum, signal.SIG_DFL)  # then end as the signal asks
    os.kill(os.getpid(), signum)


def stop_group(process: subprocess.Popen, first_signal: int = signal.SIGTERM) -> None:
    """Signal the process group ``process`` leads; SIGKILL the group if it is still there later."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, first_signal)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # what the leader left behind, or the leader
    process.wait()


atexit.register(stop_everything)
if threading.current_thread() is threading.main_thread():
    for _signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_signum) in (signal.SIG_DFL, None):
            signal.signal(_signum, _on_signal)


class ManagedProcess:
    """A child process with its output in ``test-output/<name>.log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.process: subprocess.Popen[bytes] | None = None
        OUTPUT.mkdir(exist_ok=True)
        self.log_path = OUTPUT / f"{name}.log"

    def start(self, timeout: float = 30) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # its own process group: its children are stopped with it
        )
        log.close()
        stop_on_exit(self.process.pid, self.stop)
        try:
            wait_until(self.ready, timeout, self.name)
        except TimeoutError:
            self.stop()
            raise TimeoutError(f"{self.name} did not start; see {self.log_path}") from None

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
        return port_open(self.port)

    def __enter__(self) -> Self:
        """Started on entering a ``with`` block, stopped on leaving it."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        forget(process.pid)
        stop_group(process)
