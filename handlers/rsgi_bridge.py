"""The WSGI app served through granian's RSGI interface: each body read whole on the event
loop (one deadline, a size bound, admitted by what the headers prove), the requests of
``loop_routes`` answered on the loop, every other one by the WSGI app on a bounded thread
pool. What it bounds and why: [docs/server.md](../docs/server.md).
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

from handlers.errors import Answer, BodyRefused, error_answer
from pushqueue import logs

T = TypeVar("T")
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Blocking = Callable[[Callable[[], T]], Awaitable[T]]
OnLoop = Callable[[dict[str, Any], bytes, Blocking], Awaitable[Answer]]
LoopRoutes = Mapping[tuple[str, str], OnLoop]  # (method, path prefix): served on the loop
_SPECIAL_HEADERS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
_PATH_SAFE = "/:@!$&'()*+,;=~"  # RFC 3986 pchar and "/": kept as they are in RAW_URI
SHUTDOWN_GRACE = 5.0  # seconds; app.yaml's --workers-kill-timeout (8) leaves 3 to answer


class ClientGone(Exception):
    """The client went away before sending its whole body."""


def nobody(environ: dict[str, Any]) -> bool:
    """No request proves itself in its headers (the default of :class:`RsgiBridge`)."""
    return False


class RsgiBridge:
    """An RSGI app: ``loop_routes`` on the event loop, the WSGI ``app`` in ``threads`` threads,
    each body read whole within ``body_timeout`` seconds and at most ``max_body_bytes`` long."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        threads: int,
        body_timeout: float,
        max_body_bytes: int,
        loop_routes: LoopRoutes | None = None,
        shutdown_grace: float = SHUTDOWN_GRACE,
        proven: Callable[[dict[str, Any]], bool] = nobody,
        proven_bodies: int = 64,
        unproven_bodies: int = 32,
    ):
        self.app = app
        self.body_timeout = body_timeout
        self.max_body_bytes = max_body_bytes
        self.loop_routes = loop_routes or {}
        self.shutdown_grace = shutdown_grace
        self.proven = proven
        self.unproven_bodies = unproven_bodies
        self.threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")
        self._on_loop_tasks: set[asyncio.Task[Any]] = set()
        self._proven_slots = asyncio.Semaphore(proven_bodies)
        self._unproven_in_flight = 0

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called by granian when a worker starts: on SIGTERM, :meth:`interrupt` runs
        ``shutdown_grace`` seconds after granian's own handler."""
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: Any) -> None:
            loop.call_soon_threadsafe(loop.call_later, self.shutdown_grace, self.interrupt)
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def interrupt(self) -> None:
        """Cancel what ``loop_routes`` serve now: they answer each request all the same."""
        for task in list(self._on_loop_tasks):
            task.cancel()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called by granian when a worker stops (requests in flight done): join the threads."""
        self.threads.shutdown(wait=True)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            raise ValueError(f"unsupported RSGI scope {scope.proto!r}")
        environ = wsgi_environ(scope)
        try:
            if "\ufffd" in scope.path:
                raise BodyRefused(400, "the URL path is not UTF-8 once percent-decoded")
            status, headers, answer = await self._serve(environ, proto)
        except ClientGone:
            logs.log(logging.INFO, "request dropped: the client went away", path=environ["PATH_INFO"][:300])
            return
        except BodyRefused as refused:
            logs.log(logging.INFO, "request refused: " + str(refused), path=environ["PATH_INFO"][:300])
            status, headers, answer = error_answer(refused)
        proto.response_bytes(status, headers, answer)

    async def _serve(self, environ: dict[str, Any], proto: Any) -> Answer:
        """The answer to a request whose body is admitted (see the module docstring) and
        read; :class:`BodyRefused` or :class:`ClientGone` when it is not."""
        length = self._declared_length(environ)
        if length == 0 or (length is None and "HTTP_TRANSFER_ENCODING" not in environ):
            return await self._answer(environ, b"")  # no body: nothing to wait for
        deadline = asyncio.get_running_loop().time() + self.body_timeout  # admission and body
        proven = self.proven(environ)
        if proven:
            await self._proven_slot(deadline)
        elif self._unproven_in_flight >= self.unproven_bodies:
            raise BodyRefused(503, "busy: too many bodies from unproven callers at once", retry_after=1)
        else:
            self._unproven_in_flight += 1
        try:
            body = await self._read_body(proto, length, deadline)
            environ["CONTENT_LENGTH"] = str(len(body))
            return await self._answer(environ, body)
        finally:
            if proven:
                self._proven_slots.release()
            else:
                self._unproven_in_flight -= 1

    async def _proven_slot(self, deadline: float) -> None:
        """Take a proven request's slot, waiting for one until ``deadline`` (else 503)."""
        slots = self._proven_slots
        if not slots.locked():  # the common case: taken at once, no timer to arm
            await slots.acquire()
            return
        try:
            async with asyncio.timeout_at(deadline):
                await slots.acquire()
        except TimeoutError:
            raise BodyRefused(503, "busy: no request slot freed in time", retry_after=1) from None

    async def _answer(self, environ: dict[str, Any], body: bytes) -> Answer:
        loop = asyncio.get_running_loop()

        def blocking(call: Callable[[], T]) -> Awaitable[T]:
            return loop.run_in_executor(self.threads, call)

        try:
            serve = self._loop_route(environ)
            if serve is None:
                environ["wsgi.input"] = io.BytesIO(body)
                return await loop.run_in_executor(self.threads, run_wsgi, self.app, environ)
            task = asyncio.current_task()
            self._on_loop_tasks.add(task)  # type: ignore[arg-type]
            try:
                return await serve(environ, body, blocking)
            finally:
                self._on_loop_tasks.discard(task)  # type: ignore[arg-type]
        except Exception as exc:
            return error_answer(exc, environ["PATH_INFO"])

    def _loop_route(self, environ: dict[str, Any]) -> OnLoop | None:
        """What serves the request on the loop (see ``loop_routes``), or ``None``: the WSGI app."""
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        for (route_method, prefix), serve in self.loop_routes.items():
            if method == route_method and path.startswith(prefix):
                return serve
        return None

    def _declared_length(self, environ: dict[str, Any]) -> int | None:
        """The body's declared length (``None``: not declared); :class:`BodyRefused` (413)
        above ``max_body_bytes``, before any of it is read."""
        declared = environ.get("CONTENT_LENGTH", "")
        length = int(declared) if declared.isascii() and declared.isdigit() else None
        if length is not None and length > self.max_body_bytes:
            limit = self.max_body_bytes
            raise BodyRefused(413, f"the body is {declared} bytes; at most {limit} are accepted")
        return length

    async def _read_body(self, proto: Any, length: int | None, deadline: float) -> bytes:
        """The whole body by ``deadline`` (the loop's time), or :class:`BodyRefused` /
        :class:`ClientGone`."""
        try:
            async with asyncio.timeout_at(deadline):  # one deadline for the whole body
                body = await proto() if length is not None else await self._read_chunks(proto)
        except TimeoutError:
            raise BodyRefused(408, f"the body did not arrive within {self.body_timeout:g} s") from None
        except RuntimeError as exc:  # granian's RSGIProtocolClosed / RSGIProtocolError
            raise ClientGone from exc
        if length is not None and len(body) != length:
            raise ClientGone
        return body

    async def _read_chunks(self, proto: Any) -> bytes:
        """A body of no declared length (chunked), refused once over the size bound."""
        parts: list[bytes] = []
        size = 0
        async for chunk in proto:
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyRefused(413, f"the body is larger than {self.max_body_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)


def wsgi_environ(scope: Any) -> dict[str, Any]:
    """The PEP 3333 environ of an RSGI HTTP ``scope``, without ``wsgi.input``."""
    path = scope.path
    query = scope.query_string
    server_host, server_port = _host_and_port(scope.server)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query,
        "RAW_URI": quote(path, safe=_PATH_SAFE) + ("?" + query if query else ""),
        "SERVER_NAME": server_host,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/" + scope.http_version,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    if scope.client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = _host_and_port(scope.client)
    for name, value in scope.headers.items():
        special = _SPECIAL_HEADERS.get(name)
        if special is not None:
            environ[special] = value
        elif "_" not in name:
            key = "HTTP_" + name.upper().replace("-", "_")
            text = value.encode("utf-8").decode("latin-1") if not value.isascii() else value
            environ[key] = f"{environ[key]}, {text}" if key in environ else text
    return environ


def _host_and_port(address: str) -> tuple[str, str]:
    """``("::1", "8080")`` for ``"[::1]:8080"``, ``("127.0.0.1", "80")`` for ``"127.0.0.1:80"``."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), port


def run_wsgi(app: WSGIApp, environ: dict[str, Any]) -> Answer:
    """Call ``app`` (in a pool thread): its status, headers and whole body."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        # Nothing is sent before the app returns: an error page (exc_info) may always replace
        # the answer started.
        if started and exc_info is None:
            raise AssertionError("start_response called twice without exc_info")
        started[:] = [(status, headers)]
        return _write_unsupported

    chunks: list[bytes] = []
    iterable = app(environ, start_response)
    try:
        chunks.extend(chunk for chunk in iterable if chunk)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status, headers = started[0]
    return int(status.split(" ", 1)[0]), list(headers), b"".join(chunks)


def _write_unsupported(data: bytes) -> None:
    raise NotImplementedError("the write() callable of start_response is not supported: return an iterable")
