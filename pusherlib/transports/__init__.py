"""Transports: how a signed request reaches Pusher.

:class:`HTTPTransport` (default, blocking; NDB futures from ``*_async``),
:class:`AsyncioTransport` (``await`` on the running loop) and :class:`UrlfetchTransport`
(App Engine urlfetch, legacy NDB futures). The three HTTP drivers share :mod:`.core` (the
pool, the resend and deadline rules) and :mod:`.http11`. Write your own by overriding
:meth:`Transport.send`.
"""

from .asyncio import AsyncioTransport
from .base import Request, Response, Transport
from .http import HTTPTransport
from .urlfetch import UrlfetchTransport

__all__ = ["AsyncioTransport", "HTTPTransport", "Request", "Response", "Transport", "UrlfetchTransport"]
