"""google-cloud-ndb futures for pusherlib's requests: inside an NDB context the ``*_async``
methods return an NDB future, readable only in the context (and thread) that made it.
:class:`NdbBridge` serves :class:`HTTPTransport` in the loop's thread; :class:`ThreadedNdbBridge`
runs any other transport's ``send`` on threads."""

from __future__ import annotations

import heapq
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from google.cloud.ndb import tasklets

from .base import Request, Response, Transport
from .core import HostKey, as_pusher_error, check_pool_timeout, not_sent_error, turn_deadline, where
from .http11 import ResponseParser
from .ndb_loop import event_loop, loop_driver
from .nonblocking import Exchange

T = TypeVar("T")

DEFAULT_MAX_WORKERS = 16


class NdbBridge:
    """Requests of one :class:`HTTPTransport`, sent and read in the NDB event loop's thread; at most
    ``max_connections`` per host in flight, the others wait at most ``pool_timeout``."""

    def __init__(self, transport: Any, max_connections: int | None = None):
        self._transport = transport
        self.pool = transport.pool
        self.pool_timeout: float | None = transport.pool_timeout
        self.max_connections = max_connections or max(1, transport.max_idle_per_host)
        self.last_key: HostKey | None = None

    def submit(self, request: Request, read: Callable[[Response], T]) -> tasklets.Future:
        """Send ``request`` now; return an NDB future of ``read(response)``."""
        future = tasklets.Future(info=f"pusherlib {request.method} {request.target.split('?', 1)[0]}")
        deadline = time.monotonic() + request.timeout
        try:
            exchange = Exchange(self, request, self._transport.encode(request), read, future, deadline)
            loop_driver().add(exchange)
        except Exception as exc:  # every error arrives through the future
            if not future.done():
                future.set_exception(as_pusher_error(exc, where(request)))
        return future

    def new_parser(self, request: Request) -> ResponseParser:
        return ResponseParser(request.method == "HEAD", max_body_bytes=self._transport.max_response_bytes)

    def wrap_tls(self, sock: socket.socket, host: str) -> ssl.SSLSocket:
        """``sock`` under TLS (the transport's context), its handshake not done yet."""
        return self._transport.tls_context().wrap_socket(
            sock, server_hostname=host, do_handshake_on_connect=False
        )

    def close(self) -> None:
        """Nothing of its own: connections are the transport's pool's."""


class ThreadedNdbBridge:
    """A blocking ``send`` on threads, resolving NDB futures through ``queue_rpc``; a request
    waits for a thread at most ``pool_timeout`` seconds, then fails unsent."""

    def __init__(
        self,
        send: Callable[[Request], Response],
        max_workers: int = DEFAULT_MAX_WORKERS,
        pool_timeout: float | None = None,
    ):
        self._send = send
        self.pool_timeout = check_pool_timeout(pool_timeout)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pusherlib")
        self._unstarted = _Canceller()

    def submit(self, request: Request, read: Callable[[Response], T]) -> tasklets.Future:
        """Start ``request``; return an NDB future of ``read(response)``."""
        future = tasklets.Future(info=f"pusherlib {request.method} {request.target.split('?')[0]}")
        address = where(request)

        def resolve(done: ThreadFuture[Response]) -> None:
            if done.cancelled():  # no thread took it in time (or the bridge closed): not sent
                future.set_exception(not_sent_error(request, self.pool_timeout))
                return
            try:
                future.set_result(read(done.result()))
            except Exception as exc:
                future.set_exception(as_pusher_error(exc, address))

        try:
            work = self._executor.submit(self._send, request)
            self._unstarted.add(turn_deadline(request, self.pool_timeout, time.monotonic()), work)
            event_loop().queue_rpc(work, resolve)
        except Exception as exc:  # e.g. closed: through the future too
            future.set_exception(as_pusher_error(exc, address))
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._unstarted.close()


class _Canceller:
    """Cancels thread-pool work that no thread has started by its deadline: one thread,
    started when first needed, waiting for the earliest deadline."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, ThreadFuture[Any]]] = []
        self._numbers = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, deadline: float, work: ThreadFuture[Any]) -> None:
        with self._changed:
            heapq.heappush(self._due, (deadline, next(self._numbers), work))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pusherlib-canceller", daemon=True)
                self._thread.start()
            elif self._due[0][2] is work:  # the earliest now: wake the thread for it
                self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._due.clear()
            self._changed.notify()

    def _run(self) -> None:
        due = self._due
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                while due and (due[0][0] <= now or due[0][2].done()):
                    heapq.heappop(due)[2].cancel()  # nothing if it started or ended
                self._changed.wait(due[0][0] - now if due else None)


class ThreadedNdbFutures(Transport):
    """Mix-in for a transport with only ``send``: its ``*_async`` methods return
    google-cloud-ndb futures, ``send`` running on a thread pool."""

    _ndb_bridge: ThreadedNdbBridge | None = None

    def request_async(self, request: Request, read: Callable[[Response], T]) -> Any:
        if self._ndb_bridge is None:
            self._ndb_bridge = ThreadedNdbBridge(self.send)
        return self._ndb_bridge.submit(request, read)

    def close(self) -> None:
        if self._ndb_bridge is not None:
            self._ndb_bridge.close()
            self._ndb_bridge = None
        super().close()
