"""asyncio: ``await pusher.trigger_async(...)`` through an ``httpx.AsyncClient``.

For apps that run on an asyncio event loop. Request building and response reading are
the same as every other transport's; only the I/O is asynchronous. Needs ``httpx``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import PusherConnectionError, PusherTimeout, PusherTypeError
from .base import Request, Response, Transport

T = TypeVar("T")


class AsyncioTransport(Transport):
    """Pooled keep-alive HTTP on asyncio; serves the ``*_async`` methods only."""

    def __init__(self, client: Any = None, *, max_connections: int = 64):
        import httpx

        self._httpx = httpx
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        )

    def send(self, request: Request) -> Response:
        raise PusherTypeError("AsyncioTransport serves the *_async methods: await pusher.trigger_async(...)")

    async def request_async(self, request: Request, read: Callable[[Response], T]) -> T:
        """Send ``request`` on the running loop; return ``read(response)``."""
        httpx = self._httpx
        try:
            answer = await self._client.request(
                request.method,
                request.url,
                content=request.body,
                headers=request.headers,
                timeout=request.timeout,
            )
        except httpx.TimeoutException as exc:
            raise PusherTimeout(
                f"no answer from {request.host}:{request.port} within {request.timeout} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise PusherConnectionError(f"request to {request.host}:{request.port} failed: {exc!r}") from exc
        return read(Response(answer.status_code, answer.content, dict(answer.headers)))

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
