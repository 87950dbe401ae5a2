"""Transports: how a signed request reaches Pusher. :class:`HTTPTransport` (default, blocking;
NDB futures from ``*_async``), :class:`AsyncioTransport` and :class:`UrlfetchTransport`; write
your own by overriding :meth:`Transport.send`. See docs/pusherlib.md, 'Transports'."""

from .asyncio import AsyncioTransport
from .base import Request, Response, Transport
from .http import HTTPTransport
from .urlfetch import UrlfetchTransport

__all__ = ["AsyncioTransport", "HTTPTransport", "Request", "Response", "Transport", "UrlfetchTransport"]
