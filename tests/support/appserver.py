"""The app (``main:app``) under gunicorn, started by the tests on a free port.

The app is configured by environment variables only (see ``settings.py``); pass them as
``env``. :func:`running_stack` starts the Cloud Tasks emulator and the app pointed at each
other, the real path of a push::

    with running_stack({"PUSHER_URL": soketi.url}) as stack:
        stack.app.client.post("/push/my-channel/my-event", json={"n": 1})
        stack.emulator.wait_until_empty("pusher")

An app started alone gets ``CLOUD_TASKS_EMULATOR_HOST`` pointing at a port nobody listens
on (so enqueueing answers 503 at once instead of reaching for Google); pass your own to
override it. The server runs one worker process (so the in-process task log and the one
Pusher client are shared by every request) with several threads: the emulator's RunTask
(used to replay parked tasks) calls back into the app while an admin request waits.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import httpx

from .emulator import TasksEmulator, running_emulator
from .processes import ManagedProcess, free_port

READY_PATH = "/_ah/warmup"
ADMIN_HEADERS = {"X-AppEngine-User-Is-Admin": "1"}  # what App Engine adds for a signed-in admin


class AppServer(ManagedProcess):
    """``gunicorn main:app`` on ``127.0.0.1:port`` with ``env`` (added to this process's)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        threads: int = 8,
        name: str = "app",
    ):
        port = port or free_port()
        defaults = {
            "GOOGLE_CLOUD_PROJECT": "test-project",
            "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
            "PYTHONUNBUFFERED": "1",
            "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",  # local development: parked events in memory
        }
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            str(threads),
            "--graceful-timeout",
            "2",
            "main:app",
        ]
        super().__init__(name, argv, {**defaults, **env}, port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @cached_property
    def client(self) -> httpx.Client:
        """An ``httpx.Client`` for this server (relative URLs, 10 s timeout)."""
        return httpx.Client(base_url=self.url, timeout=10)

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
