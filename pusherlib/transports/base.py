"""The interface between request building and I/O: a transport turns a :class:`Request` into a
:class:`Response` and only moves bytes; ``request_async`` returns a future of ``read(response)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import PusherConnectionError

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
    def ascii_host(self) -> str:
        """``host`` as it goes on the wire: a non-ASCII name IDNA-encoded (one that cannot
        be raises :class:`PusherConnectionError`)."""
        host = self.host
        if host.isascii():
            return host
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise PusherConnectionError(f"host name {host!r} cannot be IDNA-encoded: {exc}") from exc

    @property
    def host_and_port(self) -> str:
        """``host:port`` with an IPv6 literal in brackets (what ``CONNECT`` names)."""
        host = self.ascii_host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def authority(self) -> str:
        """``host``, or ``host:port`` when the port is not the scheme's default (an IPv6
        literal in brackets): the ``Host`` header and the URL's authority."""
        host = self.ascii_host
        if ":" in host:
            host = f"[{host}]"
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

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
    """Base class of transports: override ``send`` (and ``request_async``, or mix in ``ThreadedNdbFutures``).
    ``request.timeout`` bounds the whole exchange; a wait for a turn is bounded separately (:mod:`.core`)."""

    def send(self, request: Request) -> Response:
        """Send ``request`` and return the response, or raise ``PusherHTTPError``."""
        raise NotImplementedError

    def request_async(self, request: Request, read: Callable[[Response], T]) -> Any:
        """Send ``request`` concurrently; return a future of ``read(response)``."""
        raise NotImplementedError(
            f"{type(self).__name__} has no *_async flavour: subclass "
            "pusherlib.transports.ndb.ThreadedNdbFutures too for google-cloud-ndb futures"
        )

    def close(self) -> None:
        """Release connections and threads."""
