"""asyncio: ``await pusher.trigger_async(...)`` through an ``httpx.AsyncClient``.

For apps that run on an asyncio event loop. Request building and response reading are
the same as every other transport's; only the I/O is asynchronous. Needs ``httpx``.
The request's ``timeout`` is a deadline for all of it, and answers are read up to
``max_response_bytes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import PusherConnectionError, PusherTimeout, PusherTypeError
from .base import Request, Response, Transport
from .http11 import MAX_BODY_BYTES

T = TypeVar("T")


class AsyncioTransport(Transport):
    """Pooled keep-alive HTTP on asyncio; serves the ``*_async`` methods only."""

    def __init__(
        self, client: Any = None, *, max_connections: int = 64, max_response_bytes: int = MAX_BODY_BYTES
    ):
        import httpx

        self._httpx = httpx
        self.max_response_bytes = max_response_bytes
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        )

    def send(self, request: Request) -> Response:
        raise PusherTypeError("AsyncioTransport serves the *_async methods: await pusher.trigger_async(...)")

    async def request_async(self, request: Request, read: Callable[[Response], T]) -> T:
        """Send ``request`` on the running loop; return ``read(response)``."""
        httpx = self._httpx
        where = f"{request.host}:{request.port}"
        try:
            async with asyncio.timeout(request.timeout):
                status, headers, body = await self._exchange(request)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise PusherTimeout(f"no answer from {where} within {request.timeout} s") from exc
        except httpx.HTTPError as exc:
            raise PusherConnectionError(f"request to {where} failed: {exc!r}") from exc
        return read(Response(status, body, headers))

    async def _exchange(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        stream = self._client.stream(
            request.method,
            request.url,
            content=request.body,
            headers=request.headers,
            timeout=request.timeout,
        )
        async with stream as answer:
            body = bytearray()
            async for piece in answer.aiter_bytes():
                body += piece
                if len(body) > self.max_response_bytes:
                    where = f"{request.host}:{request.port}"
                    raise PusherConnectionError(f"answer from {where} over {self.max_response_bytes} bytes")
            return answer.status_code, dict(answer.headers), bytes(body)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
