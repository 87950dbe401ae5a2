"""soketi, a real Pusher-protocol server, started by the tests on a free port."""

from __future__ import annotations

import json
import uuid

from .processes import ROOT, ManagedProcess, free_port, wait_until

SOKETI = ROOT / "node_modules" / "@soketi" / "soketi" / "bin" / "server.js"


def unique(prefix: str) -> str:
    """``prefix`` plus a random suffix: a channel or user name no other test on the
    session's shared soketi uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Soketi(ManagedProcess):
    """One soketi with one app: ``app_id``, ``key``, ``secret`` on ``127.0.0.1:port``."""

    def __init__(
        self,
        app_id: str = "4242",
        key: str = "test-key",
        secret: str = "test-secret",
        port: int | None = None,
        webhooks: list[dict] | None = None,
        name: str = "soketi",
        max_event_kb: int | None = None,
    ):
        self.app_id, self.key, self.secret = app_id, key, secret
        port = port or free_port()
        env = {
            "SOKETI_HOST": "127.0.0.1",
            "SOKETI_PORT": str(port),
            "SOKETI_METRICS_SERVER_PORT": str(free_port()),
            "SOKETI_DEFAULT_APP_ID": app_id,
            "SOKETI_DEFAULT_APP_KEY": key,
            "SOKETI_DEFAULT_APP_SECRET": secret,
            "SOKETI_DEFAULT_APP_USER_AUTHENTICATION": "true",
            "SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES": "true",
            "SOKETI_SHUTDOWN_GRACE_PERIOD": "0",
            "SOKETI_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SEC": "-1",
            "SOKETI_DEFAULT_APP_MAX_READ_REQ_PER_SEC": "-1",
        }
        if webhooks is not None:
            env["SOKETI_DEFAULT_APP_WEBHOOKS"] = json.dumps(webhooks)
        if max_event_kb is not None:  # soketi answers 413 for more event data
            env["SOKETI_EVENT_MAX_SIZE_IN_KB"] = str(max_event_kb)
        super().__init__(name, ["node", str(SOKETI), "start"], env, port)

    @property
    def url(self) -> str:
        """The ``PUSHER_URL`` of this server's app."""
        return f"http://{self.key}:{self.secret}@127.0.0.1:{self.port}/apps/{self.app_id}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/app/{self.key}?protocol=7&client=pytest&version=1.0"

    def restart(self) -> None:
        self.stop()
        wait_until(lambda: not self.ready_quietly(), 10, "soketi stop")
        self.start()

    def ready_quietly(self) -> bool:
        try:
            return self.ready()
        except RuntimeError:
            return False
