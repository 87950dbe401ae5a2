"""The exceptions pusherlib raises, all :class:`PusherError`: bad input found before any I/O
(:class:`PusherValueError`, :class:`PusherTypeError`) and failed requests (:class:`PusherHTTPError`
with ``.status``, ``.body``, ``.retryable``). The official library's names are kept; see
docs/pusherlib.md, 'Errors'."""

from __future__ import annotations


class PusherError(Exception):
    """Base class of every error pusherlib raises."""

    status: int | None = None
    body: str | None = None
    retryable: bool = False
    #: Sending the same thing again can never succeed (see :func:`is_permanent`).
    permanent: bool = False


class PusherValueError(PusherError, ValueError):
    """An argument has the right type but a value Pusher would refuse."""

    permanent = True


class PusherTypeError(PusherError, TypeError):
    """An argument has a type pusherlib cannot send."""

    permanent = True


class PusherHTTPError(PusherError):
    """A request to the Pusher HTTP API did not succeed."""

    def __init__(self, message: str, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = body


class PusherBadStatus(PusherHTTPError):
    """An unexpected HTTP status (also the base of the specific ones below)."""


class PusherBadRequest(PusherBadStatus):
    """400: Pusher refused the request as malformed."""

    permanent = True


class PusherBadAuth(PusherBadStatus):
    """401: the signature or credentials were refused."""


class PusherForbidden(PusherBadStatus):
    """403: the app is disabled or over its quota."""


class PusherPayloadTooLarge(PusherBadStatus):
    """413: the event data is larger than the server accepts."""

    permanent = True


class PusherRateLimited(PusherBadStatus):
    """429: too many requests; retry later."""

    retryable = True


class PusherServerError(PusherBadStatus):
    """5xx: the server failed; retry later."""

    retryable = True


class PusherConnectionError(PusherHTTPError):
    """No response came: the connection could not be made or broke."""

    retryable = True


class PusherTimeout(PusherConnectionError):
    """No whole response came within the configured timeout (a deadline for the request)."""


class PusherNotSent(PusherTimeout):
    """No connection was free within the transport's pool timeout: not a byte of the request
    was written, so sending it again cannot make Pusher act twice."""


def is_permanent(error: BaseException) -> bool:
    """Whether sending the same request again can never succeed: True only for bad input and
    Pusher's 400 and 413 answers (an exception that is not pusherlib's is not permanent)."""
    return isinstance(error, PusherError) and error.permanent


_BY_STATUS: dict[int, type[PusherBadStatus]] = {
    400: PusherBadRequest,
    401: PusherBadAuth,
    403: PusherForbidden,
    413: PusherPayloadTooLarge,
    429: PusherRateLimited,
}


def error_for_status(status: int, body: str, message: str | None = None) -> PusherBadStatus:
    """Return the exception that stands for an error answer with ``status``."""
    cls = _BY_STATUS.get(status) or (PusherServerError if status >= 500 else PusherBadStatus)
    text = message or body.strip()[:200] or "no body"
    return cls(f"Pusher answered {status}: {text}", status=status, body=body)
