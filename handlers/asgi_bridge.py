"""A WSGI app served through ASGI, with the request body bounded in time and size.

granian's WSGI interface hands a request to a thread as soon as its headers are in, and sets
no limit on how long its body may take: a client sending its body slowly holds that thread
as long as it likes. :class:`AsgiBridge` reads the whole body on the event loop first (one
deadline for all of it, and a size bound), and only then runs the WSGI app in a bounded
thread pool with the complete body as ``wsgi.input``. A body that does not arrive in time is
answered 408, one above the limit 413 (when declared, before reading any of it), and the
connection is closed. The response is gathered by the thread and sent from the event loop,
so a client reading it slowly holds no thread either.

The environ follows PEP 3333 (as gunicorn builds it, with its ``RAW_URI``: the request
target as sent). Headers whose names hold ``_`` are dropped: they would read as their ``-``
spelling (``X_AppEngine_QueueName`` as ``X-AppEngine-QueueName``), which App Engine's front
end is not documented to strip. The ``write`` callable of ``start_response`` is not supported.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

from pushqueue import logs

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_SPECIAL_HEADERS = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}


class BodyRefused(Exception):
    """The body is not read whole: answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The client went away before sending its whole body."""


class AsgiBridge:
    """An ASGI app running the WSGI ``app`` in ``threads`` threads, each request's body
    read whole within ``body_timeout`` seconds and at most ``max_body_bytes`` long."""

    def __init__(self, app: WSGIApp, *, threads: int, body_timeout: float, max_body_bytes: int):
        self.app = app
        self.body_timeout = body_timeout
        self.max_body_bytes = max_body_bytes
        self.threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {scope['type']!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.threads.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        environ = wsgi_environ(scope)
        try:
            body = await self._read_body(environ, receive)
        except ClientGone:
            logs.log(logging.INFO, "request dropped: the client went away", path=environ["PATH_INFO"][:300])
            return
        except BodyRefused as refused:
            logs.log(logging.INFO, "request refused: " + str(refused), path=environ["PATH_INFO"][:300])
            await _send_refusal(send, refused)
            return
        if body or "CONTENT_LENGTH" in environ:
            environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        loop = asyncio.get_running_loop()
        try:
            status, headers, chunks = await loop.run_in_executor(self.threads, run_wsgi, self.app, environ)
        except Exception:
            logs.log(logging.ERROR, "unhandled error", exc_info=True, path=environ["PATH_INFO"][:300])
            status, headers, chunks = _json_answer(500, "internal error")
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": False})

    async def _read_body(self, environ: dict[str, Any], receive: Receive) -> bytes:
        """The whole body, or :class:`BodyRefused` / :class:`ClientGone`."""
        declared = environ.get("CONTENT_LENGTH", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body_bytes:
            limit = self.max_body_bytes
            raise BodyRefused(413, f"the body is {declared} bytes; at most {limit} are accepted")
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):  # one deadline for the whole body
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise BodyRefused(413, f"the body is larger than {self.max_body_bytes} bytes")
                    parts.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(parts)
        except TimeoutError:
            raise BodyRefused(408, f"the body did not arrive within {self.body_timeout:g} s") from None


def wsgi_environ(scope: dict[str, Any]) -> dict[str, Any]:
    """The PEP 3333 environ of an ASGI HTTP ``scope``, without ``wsgi.input``."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    raw_path = raw_path.split(b"?", 1)[0]
    query = scope.get("query_string", b"").decode("latin-1")
    script_name = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    path = unquote_to_bytes(raw_path).decode("latin-1")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "RAW_URI": raw_path.decode("latin-1") + ("?" + query if query else ""),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    for name, value in scope.get("headers", ()):
        name = name.lower()
        if name in _SPECIAL_HEADERS:
            environ[_SPECIAL_HEADERS[name]] = value.decode("latin-1")
        elif b"_" in name:
            continue
        else:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            environ[key] = f"{environ[key]}, {text}" if key in environ else text
    return environ


def run_wsgi(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
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
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return int(status.split(" ", 1)[0]), encoded, chunks


def _write_unsupported(data: bytes) -> None:
    raise NotImplementedError("the write() callable of start_response is not supported: return an iterable")


def _json_answer(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
    body = json.dumps({"error": message}).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return status, headers, [body]


async def _send_refusal(send: Send, refused: BodyRefused) -> None:
    status, headers, (body,) = _json_answer(refused.status, str(refused))
    headers.append((b"connection", b"close"))  # the rest of the body is never read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
