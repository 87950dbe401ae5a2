"""The app as ``main.py`` composes it, served by WebTest, for the fuzz and security tests.

:func:`app_under_attack` builds ``main.ROUTE_GROUPS`` with settings of the test's choice
on the App Engine testbed's taskqueue stub (``TASKS_BACKEND=taskqueue``), so a test can
count the tasks each request queued, and captures every log line the app writes (its
JSON lines on stdout and Python logging), so a test can look for secrets in them. Pusher
is ``pusher_url``, or by default a stub server answering 200 (``target.pusher``, which
counts the requests the worker sent)::

    with app_under_attack() as target:
        target.app.post("/push/ch/ev", "{}", content_type="application/json")
        assert target.queued() == 1
        assert SECRET not in target.logs()
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import webtest
from google.appengine.ext import testbed

import pushqueue
from handlers.application import create_app
from settings import Settings

from .fault_server import FaultServer, Reply
from .processes import ROOT, free_port

QUEUE = "pusher"
PARKED_PULL_QUEUE = "pusher-parked-pull"
ADMIN = {"X-AppEngine-User-Is-Admin": "1"}
QUEUE_HEADERS = {
    "X-AppEngine-QueueName": QUEUE,
    "X-AppEngine-TaskName": "t1",
    "X-AppEngine-TaskRetryCount": "0",
    "X-AppEngine-TaskExecutionCount": "0",
}


def route_groups() -> tuple[Any, ...]:
    """``main.ROUTE_GROUPS`` (importing main builds an app from the environment: give it one)."""
    env = {
        "PUSHER_URL": "http://key:secret@127.0.0.1:1/apps/1",
        "GOOGLE_CLOUD_PROJECT": "test-project",
        "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
        "TASKS_BACKEND": "cloudtasks",
    }
    with _environment(env):
        return importlib.import_module("main").ROUTE_GROUPS


@dataclass
class Target:
    """The app under test, its queue stub and what it logged."""

    app: webtest.TestApp
    stub: Any
    log_stream: io.StringIO = field(default_factory=io.StringIO)
    pusher: FaultServer | None = None

    def post(
        self, path: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> webtest.TestResponse:
        """POST ``body`` exactly as given (WebTest would parse a multipart body itself)."""
        request = webtest.TestRequest.blank(path, method="POST", body=body, headers=headers or {})
        request.content_type = content_type
        return self.app.do_request(request, status="*", expect_errors=True)

    def queued(self, queue: str = QUEUE) -> int:
        """How many tasks wait in ``queue``."""
        return len(self.stub.get_filtered_tasks(queue_names=[queue]))

    def purge(self) -> None:
        for queue in (QUEUE, PARKED_PULL_QUEUE):
            self.stub.FlushQueue(queue)

    def logs(self) -> str:
        return self.log_stream.getvalue()


@contextlib.contextmanager
def app_under_attack(
    pusher_url: str | None = None, *, secret: str = "secret", **env: str
) -> Iterator[Target]:
    """The app with ``env``, its logs captured; Pusher is ``pusher_url`` or a stub server
    (app ``1``, key ``key``, ``secret``). The test plays the queue: local development is on
    (``ALLOW_UNVERIFIED_LOCAL_REQUESTS=""`` turns it off)."""
    with contextlib.ExitStack() as stack:
        pusher = None
        if pusher_url is None:
            pusher = stack.enter_context(FaultServer(default=Reply.json(200, {})))
            pusher_url = f"http://key:{secret}@127.0.0.1:{pusher.port}/apps/1"
        groups = route_groups()
        bed = testbed.Testbed()
        bed.activate()
        stack.callback(pushqueue.configure, None)
        stack.callback(bed.deactivate)
        bed.init_taskqueue_stub(root_path=str(ROOT))
        stream = io.StringIO()
        stack.enter_context(_captured_logs(stream))
        stack.enter_context(contextlib.redirect_stdout(stream))
        stack.enter_context(contextlib.redirect_stderr(stream))
        defaults = {"TASKS_BACKEND": "taskqueue", "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1"}
        settings = Settings.from_env({**defaults, "PUSHER_URL": pusher_url, **env})
        app = webtest.TestApp(create_app(settings, groups, app_engine_apis=False))
        yield Target(app, bed.get_stub(testbed.TASKQUEUE_SERVICE_NAME), stream, pusher)


@contextlib.contextmanager
def _captured_logs(stream: io.StringIO) -> Iterator[None]:
    """Every record of Python logging, at every level, also written to ``stream``."""
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    import os

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
