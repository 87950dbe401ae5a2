"""The app's own cost per task, measured in-process: ``main:app`` called directly as WSGI.

Everything the app does for a task (routing, reading the body, parsing, the checks, the log
line on stdout, the task log) is counted; the Pusher trigger is not: the client's transport
is replaced by one that answers 200 at once. Log lines go to ``/dev/null``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

from pusherlib.transports.base import Request, Response, Transport
from pushqueue import wire

from .clients import CHANNEL, DATA, EVENT
from .context import Context
from .report import Row
from .rounds import alternate, median
from .worker import APP_ENV

CALLS = 3_000  # per round
GOAL_US = 120


class AnsweringTransport(Transport):
    """Answers every request with 200 ``{}`` without I/O: the trigger's cost left out."""

    def send(self, request: Request) -> Response:
        return Response(200, b"{}")


def wsgi_app(server_url: str) -> Any:
    """``main:app`` as App Engine would run it locally, its Pusher client sending nowhere."""
    os.environ.update(
        {
            "PUSHER_URL": server_url,
            "GOOGLE_CLOUD_PROJECT": "bench",
            "CLOUD_TASKS_EMULATOR_HOST": "127.0.0.1:9",
            **APP_ENV,
        }
    )
    import main

    main.app.services.pusher.transport = AnsweringTransport()
    return main.app


def per_call_us(app: Any, path: str, body: bytes, calls: int = CALLS) -> float:
    """Mean µs per call of ``app`` for a queue's ``POST path`` with ``body``."""
    base = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "RAW_URI": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8080",
        "HTTP_X_APPENGINE_QUEUENAME": "pusher",
        "HTTP_X_APPENGINE_TASKNAME": "bench-task",
        "HTTP_X_APPENGINE_TASKRETRYCOUNT": "0",
        "HTTP_X_APPENGINE_TASKEXECUTIONCOUNT": "0",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        statuses.append(status)
        return lambda data: None

    with open(os.devnull, "w") as devnull, redirect_stdout(devnull):
        started = time.perf_counter()
        for _ in range(calls):
            environ = dict(base)
            environ["wsgi.input"] = io.BytesIO(body)
            result = app(environ, start_response)
            b"".join(result)
            if hasattr(result, "close"):
                result.close()
        elapsed = time.perf_counter() - started
    if any(not status.startswith("200") for status in statuses):
        raise RuntimeError(f"the app did not answer 200: {sorted(set(statuses))}")
    return elapsed / calls * 1e6


def run(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    app = wsgi_app(ctx.server.url)
    push_path = f"{wire.WORKER_PUSH_PATH}/{CHANNEL}/{EVENT}"
    body = json.dumps(DATA).encode()
    event = {"channel": CHANNEL, "name": EVENT, "data": json.dumps(DATA)}
    batch = wire.batch_task([wire.encode_event(event)] * 10)
    per_call_us(app, push_path, body, 500)  # warm up
    results = alternate(
        ctx.rounds,
        {
            "push": lambda: per_call_us(app, push_path, body),
            "batch": lambda: per_call_us(app, batch.url, batch.body),
        },
    )
    push_us = median(results["push"])
    rows = [
        Row(
            "the app's own cost per /worker/push task (in-process, trigger left out)",
            "µs",
            push_us,
            goal=f"≤ {GOAL_US} µs",
            met=push_us <= GOAL_US,
            baseline="",
        ),
        Row(
            "the app's own cost per /worker/batch task of 10 events (in-process, trigger left out)",
            "µs",
            median(results["batch"]),
            baseline="",
        ),
    ]
    return rows, {"per_task_us": results}
