"""The app (``main:rsgi_app``) under the server of ``app.yaml``'s entrypoint, started by the tests
on a free port.

The app is configured by environment variables only (see ``settings.py``); pass them as
``env``. :func:`running_stack` starts the Cloud Tasks emulator and the app pointed at each
other, the real path of a push::

    with running_stack({"PUSHER_URL": soketi.url}) as stack:
        stack.app.client.post("/push/my-channel/my-event", json={"n": 1})
        stack.emulator.wait_until_empty("pusher")

Every app gets :data:`~tests.support.credentials.TRUST_ENV` (a publisher token, the
local-development switch) unless ``env`` overrides it, and its ``client`` sends the
publisher token. An app started alone gets ``CLOUD_TASKS_EMULATOR_HOST`` pointing at a port nobody listens
on (so enqueueing answers 503 at once instead of reaching for Google); pass your own to
override it. The server runs one worker process (so the in-process task log and the one
Pusher client are shared by every request) with several threads: the emulator's RunTask
(used to replay parked tasks) calls back into the app while an admin request waits.

:func:`server_argv` turns a server command line (``app.yaml``'s entrypoint by default) into
the argv that runs it on a given port, so the tests and the benchmarks run the app exactly as
App Engine starts it, with only the process and thread counts changed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import httpx

from .credentials import PUBLISHER_HEADERS, TRUST_ENV
from .emulator import TasksEmulator, running_emulator
from .processes import ROOT, ManagedProcess, free_port

READY_PATH = "/_ah/warmup"
ADMIN_HEADERS = {"X-AppEngine-User-Is-Admin": "1"}  # what App Engine adds for a signed-in admin
APP_YAML = ROOT / "app.yaml"
# The options that set a server's worker processes and threads (gunicorn's, granian's WSGI).
WORKER_OPTIONS = ("--workers",)
THREAD_OPTIONS = ("--threads", "--blocking-threads")
# Served through RSGI (handlers/rsgi_bridge.py), the app's threads are a setting instead.
BRIDGE_INTERFACE = ("--interface", "rsgi")
THREADS_VARIABLE = "APP_THREADS"


def entrypoint(app_yaml: Path = APP_YAML) -> str:
    """``app.yaml``'s ``entrypoint``: the shell command App Engine starts the app with."""
    for line in app_yaml.read_text().splitlines():
        if line.startswith("entrypoint:"):
            return line.split(":", 1)[1].strip()
    raise ValueError(f"{app_yaml} has no entrypoint")


def server_argv(
    command: str,
    port: int,
    *,
    workers: int | None = None,
    threads: int | None = None,
    app: str | None = None,
) -> list[str]:
    """``command`` (with ``$PORT``) as an argv serving on ``port``: ``workers`` and ``threads``
    replace its process and thread counts, ``app`` its last word (the WSGI app), and its
    program is looked up next to this Python first (the virtualenv's ``bin``)."""
    argv = shlex.split(re.sub(r"\$\{?PORT\}?", str(port), command))
    for options, value in ((WORKER_OPTIONS, workers), (THREAD_OPTIONS, threads)):
        if value is None or (options is THREAD_OPTIONS and is_bridged(command)):
            continue  # threads of the RSGI bridge: see server_env
        found = [index for index, word in enumerate(argv) if word in options]
        if not found:
            raise ValueError(f"{command!r} has none of {options}")
        argv[found[0] + 1] = str(value)
    if app is not None:
        argv[-1] = app
    argv[0] = shutil.which(argv[0], path=str(Path(sys.executable).parent)) or argv[0]
    return argv


def is_bridged(command: str) -> bool:
    """Whether ``command`` serves the app through granian's RSGI interface (the bridge)."""
    words = shlex.split(command)
    return any(words[index : index + 2] == list(BRIDGE_INTERFACE) for index in range(len(words)))


def server_env(command: str, threads: int | None) -> dict[str, str]:
    """The environment setting ``threads`` where ``command`` has no option for them (RSGI)."""
    return {THREADS_VARIABLE: str(threads)} if threads is not None and is_bridged(command) else {}


def tree_rss_kib(pid: int) -> int:
    """The resident memory of ``pid`` and every process below it, in KiB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        status = Path(f"/proc/{current}/status").read_text()
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        for task in Path(f"/proc/{current}/task").iterdir():
            pending += [int(child) for child in (task / "children").read_text().split()]
    return total


class AppServer(ManagedProcess):
    """The app served by ``command`` (default: ``app.yaml``'s entrypoint) on ``port``
    with ``env`` (added to this process's); one worker process with ``threads`` threads
    unless ``workers`` says otherwise (``None``: as the command has them)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        threads: int | None = 8,
        workers: int | None = 1,
        command: str | None = None,
        name: str = "app",
    ):
        port = port or free_port()
        defaults = {
            "GOOGLE_CLOUD_PROJECT": "test-project",
            "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
            "PYTHONUNBUFFERED": "1",
            "PORT": str(port),
            # A local port: nothing strips forged headers; the tests play the queue and the admin
            # (TRUST_ENV: the local switch and a publisher token). A test of the deployed rules
            # passes ALLOW_UNVERIFIED_LOCAL_REQUESTS="" (or GAE_ENV=standard).
            **TRUST_ENV,
        }
        command = command or entrypoint()
        argv = server_argv(command, port, workers=workers, threads=threads)
        super().__init__(name, argv, {**defaults, **server_env(command, threads), **env}, port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @cached_property
    def client(self) -> httpx.Client:
        """An ``httpx.Client`` for this server (relative URLs, 10 s timeout, the publisher token)."""
        return httpx.Client(base_url=self.url, timeout=10, headers=PUBLISHER_HEADERS)

    def ready(self) -> bool:
        """Listening, and the app itself answers (its configuration was accepted)."""
        if not super().ready():
            return False
        try:
            with urllib.request.urlopen(self.url + READY_PATH, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def recent_tasks(self, limit: int = 200) -> list[dict]:
        """``GET /tasks/recent`` as an admin: the newest task outcomes first."""
        response = self.client.get("/tasks/recent", params={"limit": limit}, headers=ADMIN_HEADERS)
        response.raise_for_status()
        return response.json()["tasks"]

    def stop(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]
        super().stop()


def running_app(env: Mapping[str, str], **options) -> AppServer:
    """An :class:`AppServer` (options as its constructor's) for a ``with`` block: started on
    entry, stopped on exit."""
    return AppServer(env, **options)


@dataclass
class Stack:
    """The app and the Cloud Tasks emulator that dispatches its tasks to it."""

    app: AppServer
    emulator: TasksEmulator


@contextmanager
def running_stack(env: Mapping[str, str], **app_options) -> Iterator[Stack]:
    """The emulator, then the app configured for it (``env`` wins over the emulator's)."""
    app_port = free_port()
    with (
        running_emulator(app_port) as emulator,
        running_app({**emulator.app_env(), **env}, port=app_port, **app_options) as app,
    ):
        yield Stack(app, emulator)
