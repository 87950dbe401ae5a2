"""The official library's ``backend=`` argument (recognised by class name) mapped onto
pusherlib's transports; a pusherlib ``Transport`` is taken as is."""

from __future__ import annotations

from typing import Any

from .errors import PusherTypeError, PusherValueError
from .transports.base import Transport


def transport_for_backend(backend: Any, proxy: str | None) -> Transport:
    """The transport standing for ``backend`` (``proxy``: for the HTTP transport only)."""
    if isinstance(backend, Transport):
        return backend
    if isinstance(backend, type) and issubclass(backend, Transport):
        return backend()
    name = getattr(backend, "__name__", None) or type(backend).__name__
    if name == "RequestsBackend":
        from .transports.http import HTTPTransport

        return HTTPTransport(proxy=proxy)
    if name == "GAEBackend":
        from .transports.urlfetch import UrlfetchTransport

        return UrlfetchTransport()
    if name == "AsyncIOBackend":
        from .transports.asyncio import AsyncioTransport

        return AsyncioTransport()
    if name == "TornadoBackend":
        raise PusherValueError(
            "there is no Tornado transport: use AsyncioTransport() on Tornado's asyncio loop"
        )
    raise PusherTypeError(
        f"backend {backend!r} is not known: give RequestsBackend, GAEBackend, AsyncIOBackend "
        "or a pusherlib Transport (transport=...)"
    )


def proxy_from_backend_options(options: dict[str, Any], scheme: str) -> str | None:
    """The proxy for ``scheme`` in ``RequestsBackend`` options (``proxies=``); any other
    option is refused, so a misspelt one does not pass silently."""
    unknown = set(options) - {"proxies"}
    if unknown:
        raise PusherTypeError(f"unexpected arguments {sorted(unknown)}")
    proxies = options.get("proxies") or {}
    if not isinstance(proxies, dict):
        raise PusherTypeError("proxies must be a dict like {'https': 'http://proxy:3128'}")
    return proxies.get(scheme)
