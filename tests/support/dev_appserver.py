"""`make appserver`'s stack (scripts/appserver.py) started by the tests on free ports.

It runs the app under dev_appserver.py with the Datastore emulator; Pusher is a soketi the
test owns (``--pusher-url``), so a test can stop and restart it. The app does not restart
on file changes (``--no-reload``). dev_appserver's virtualenv is the script's default,
outside the tree and kept between runs: the first run builds it (about a minute), later
ones reuse it. Skipped, with the reason, where ``gcloud`` is not on PATH.
"""

from __future__ import annotations

import sys

import httpx
import pytest

from scripts.devstack import LOCAL_PUSH_TOKEN
from scripts.gcloud_local import gcloud_missing

from .devstack import DevStack
from .processes import ROOT, free_port
from .soketi import Soketi

PUBLISHER_HEADERS = {"Authorization": f"Bearer {LOCAL_PUSH_TOKEN}"}  # what POST /push needs locally
APPSERVER = ROOT / "scripts" / "appserver.py"
FIRST_START_TIMEOUT = 400.0  # the virtualenv is built on the first run


class AppEngineStack(DevStack):
    """One run of ``scripts/appserver.py`` (see :class:`~tests.support.devstack.DevStack`)."""

    def __init__(self, pusher: Soketi, *, wsgi_app: str = "main:app", transport: str = "urlfetch"):
        ports = {"app": free_port(), "admin": free_port(), "api": free_port(), "datastore": free_port()}
        super().__init__(name="appserver-stack", wsgi_app=wsgi_app, **ports)
        self.pusher, self.transport = pusher, transport

    @property
    def argv(self) -> list[str]:
        return [
            sys.executable,
            str(APPSERVER),
            "--app-port",
            str(self.ports["app"]),
            "--admin-port",
            str(self.ports["admin"]),
            "--api-port",
            str(self.ports["api"]),
            "--datastore-port",
            str(self.ports["datastore"]),
            "--pusher-url",
            self.pusher.url,
            "--transport",
            self.transport,
            "--wsgi-app",
            self.wsgi_app,
            "--no-reload",
        ]

    def start(self, timeout: float = FIRST_START_TIMEOUT) -> None:
        reason = gcloud_missing()
        if reason is not None:
            pytest.skip(f"dev_appserver.py unavailable: {reason}")
        try:
            super().start(timeout)
        except BaseException:  # pytest's own timeout too: never leave the stack running
            if self.process is not None and self.process.poll() is None:
                self.stop()
            raise

    def client(self, admin: bool = False) -> httpx.Client:
        """A client of the app; ``admin``: signed in as an administrator on dev_appserver's
        login page (its cookie is what makes ``login: admin`` pages answer)."""
        client = httpx.Client(
            base_url=self.app_url, timeout=30, headers=PUBLISHER_HEADERS
        )  # the local token for POST /push
        if admin:
            query = {"email": "admin@example.com", "admin": "True", "action": "Login", "continue": "/"}
            client.get("/_ah/login", params=query)
        return client
