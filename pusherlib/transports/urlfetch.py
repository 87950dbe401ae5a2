"""App Engine bundled services: ``urlfetch.fetch``; ``*_async`` returns legacy NDB futures, so
legacy tasklets can ``yield`` them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import PusherConnectionError, PusherHTTPError, PusherTimeout
from .base import Request, Response, Transport

T = TypeVar("T")


class UrlfetchTransport(Transport):
    """Requests through App Engine's urlfetch service (certificates checked)."""

    def __init__(self, *, validate_certificate: bool = True):
        self.validate_certificate = validate_certificate

    def _fetch_arguments(self, request: Request) -> dict[str, Any]:
        return {
            "payload": request.body,
            "method": request.method,
            "headers": dict(request.headers),
            "follow_redirects": False,
            "validate_certificate": self.validate_certificate,
            "deadline": request.timeout,
        }

    def send(self, request: Request) -> Response:
        from google.appengine.api import urlfetch  # type: ignore[import-untyped]

        try:
            result = urlfetch.fetch(request.url, **self._fetch_arguments(request))
        except Exception as exc:
            raise _error(exc, request) from exc
        return _response(result)

    def request_async(self, request: Request, read: Callable[[Response], T]) -> Any:
        """A legacy NDB future of ``read(response)``."""
        from google.appengine.ext import ndb  # type: ignore[import-untyped]

        fetch = ndb.get_context().urlfetch(request.url, **self._fetch_arguments(request))

        @ndb.tasklet
        def call():
            try:
                result = yield fetch
            except Exception as exc:
                raise _error(exc, request) from exc
            raise ndb.Return(read(_response(result)))

        return call()


def _response(result: Any) -> Response:
    headers = {name.lower(): value for name, value in result.headers.items()}
    return Response(result.status_code, result.content or b"", headers)


def _error(exc: Exception, request: Request) -> PusherHTTPError:
    from google.appengine.api import urlfetch

    where = f"{request.host}:{request.port}"
    if isinstance(exc, urlfetch.DeadlineExceededError):
        return PusherTimeout(f"no answer from {where} within {request.timeout} s")
    if isinstance(exc, urlfetch.Error):
        return PusherConnectionError(f"urlfetch to {where} failed: {type(exc).__name__}: {exc}")
    return PusherConnectionError(f"urlfetch to {where} failed: {exc!r}")
