"""The one small interface between request building and I/O.

A transport turns a :class:`Request` into a :class:`Response`. Everything Pusher-specific
(validation, signing, JSON, reading errors out of answers) happens before and after it, so
a transport only moves bytes. ``request_async`` is the futures flavour: it returns a
future of ``read(response)`` in the transport's own kind of future.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Request:
    """A signed HTTP request, ready to send."""

    method: str
    scheme: str
    host: str
    port: int
    target: str
    body: bytes | None
    timeout: float
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def authority(self) -> str:
        """``host``, or ``host:port`` when the port is not the scheme's default."""
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, body and headers (names lowercased)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Transport:
    """Base class of transports: override ``send``; ``request_async`` is optional.

    The default ``request_async`` returns a ``google.cloud.ndb`` future (see
    :mod:`pusherlib.transports.ndb`), so every blocking transport can be used from tasklets.
    """

    _ndb_bridge: Any = None

    def send(self, request: Request) -> Response:
        """Send ``request`` and return the response, or raise ``PusherHTTPError``."""
        raise NotImplementedError

    def request_async(self, request: Request, read: Callable[[Response], T]) -> Any:
        """Send ``request`` concurrently; return a future of ``read(response)``."""
        if self._ndb_bridge is None:
            from .ndb import bridge_for

            self._ndb_bridge = bridge_for(self)
        return self._ndb_bridge.submit(request, read)

    def close(self) -> None:
        """Release connections and threads."""
        if self._ndb_bridge is not None:
            self._ndb_bridge.close()
            self._ndb_bridge = None
