"""Transports: how a signed request reaches Pusher.

* :class:`HTTPTransport` (default): pooled keep-alive HTTP/1.1; ``*_async`` methods
  return ``google.cloud.ndb`` futures.
* :class:`~pusherlib.transports.urlfetch.UrlfetchTransport`: App Engine urlfetch;
  ``*_async`` methods return legacy ``google.appengine.ext.ndb`` futures.
* :class:`~pusherlib.transports.asyncio.AsyncioTransport`: pooled keep-alive HTTP/1.1 on the
  running asyncio (or uvloop) event loop: ``await`` the ``*_async`` methods.

Write your own by subclassing :class:`Transport` and overriding ``send`` (and
:class:`~pusherlib.transports.ndb.ThreadedNdbFutures` for NDB futures from ``*_async``).

Every transport treats ``Request.timeout`` as a deadline for the exchange, bounds a wait for
its turn separately (failing unsent after it), and bounds the answers it reads; the
connection policy is in :mod:`.connections`.
"""

from .asyncio import AsyncioTransport
from .base import Request, Response, Transport
from .http import HTTPTransport
from .urlfetch import UrlfetchTransport

__all__ = ["AsyncioTransport", "HTTPTransport", "Request", "Response", "Transport", "UrlfetchTransport"]
