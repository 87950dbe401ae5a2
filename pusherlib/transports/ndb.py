"""google-cloud-ndb futures for blocking transports.

The request runs on a worker thread; its completion is handed to the NDB event loop of
the calling context (the loop accepts any future with ``add_done_callback``), where the
``google.cloud.ndb`` future is resolved. Many requests in flight run concurrently, and a
tasklet can ``yield`` them like any NDB future.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from google.cloud.ndb import _eventloop, tasklets

from .base import Request, Response

T = TypeVar("T")

DEFAULT_MAX_WORKERS = 16


class ThreadedNdbBridge:
    """Run a blocking ``send`` on threads, resolving ``google.cloud.ndb`` futures."""

    def __init__(self, send: Callable[[Request], Response], max_workers: int = DEFAULT_MAX_WORKERS):
        self._send = send
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pusherlib")

    def submit(self, request: Request, read: Callable[[Response], T]) -> tasklets.Future:
        """Start ``request``; return an NDB future of ``read(response)``."""
        future = tasklets.Future(info=f"pusherlib {request.method} {request.target.split('?')[0]}")
        thread_future = self._executor.submit(self._send, request)

        def resolve(done: ThreadFuture[Response]) -> None:
            try:
                future.set_result(read(done.result()))
            except Exception as exc:
                future.set_exception(exc)

        _eventloop.queue_rpc(thread_future, resolve)
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
