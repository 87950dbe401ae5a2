"""Checking a :class:`~pusherlib.Pusher`'s configuration and choosing its transport: each
function raises ``PusherTypeError``/``PusherValueError`` saying what is wrong."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from .backends import proxy_from_backend_options, transport_for_backend
from .errors import PusherTypeError, PusherValueError
from .proxies import ProxySetting, proxy_for
from .transports.base import Transport
from .transports.http import HTTPTransport
from .webhooks import Token

MAX_APP_ID_LENGTH = 200


def check_credentials(key: Any, secret: Any) -> None:
    """Both are non-empty strings."""
    for name, value in (("key", key), ("secret", secret)):
        if not isinstance(value, str) or not value:
            raise PusherTypeError(f"{name} must be a non-empty str")


def app_id(value: Any) -> str:
    """The app id as a str (numbers at Pusher, names on self-hosted servers); it is escaped in the
    path, so only emptiness, length, whitespace and control characters are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise PusherTypeError(f"app_id must be a str or int, not {type(value).__name__}")
    if (
        not value
        or len(value) > MAX_APP_ID_LENGTH
        or not value.isprintable()
        or any(c.isspace() for c in value)
    ):
        raise PusherValueError(
            f"app_id must be 1 to {MAX_APP_ID_LENGTH} characters without spaces, got {value!r}"
        )
    return value


def port(value: Any) -> int | None:
    """A port from 1 to 65535 (a string of digits too: ``PUSHER_PORT = "80"``), or None."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536):
        raise PusherValueError(f"port must be an int from 1 to 65535, got {value!r}")
    return value


def check_limits(timeout: Any, max_payload_bytes: Any, retries: Any) -> None:
    """A finite positive timeout, a positive payload limit, retries of at least 0."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise PusherValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if not isinstance(max_payload_bytes, int) or max_payload_bytes <= 0:
        raise PusherValueError("max_payload_bytes must be a positive int")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise PusherValueError(f"retries must be an int >= 0, got {retries!r}")


def json_class(value: Any, base: type, name: str) -> Any:
    """``value`` if it is None or a subclass of ``base`` (the ``name=`` argument)."""
    if value is not None and not (isinstance(value, type) and issubclass(value, base)):
        raise PusherTypeError(f"{name} must be a json.{base.__name__} subclass")
    return value


def webhook_tokens(tokens: Iterable[Token]) -> list[Token]:
    """Checked ``(key, secret)`` pairs."""
    checked = []
    for token in tokens:
        if not (
            isinstance(token, tuple)
            and len(token) == 2
            and isinstance(token[0], str)
            and isinstance(token[1], (str, bytes))
            and token[0]
            and token[1]
        ):
            raise PusherTypeError("webhook tokens are (key, secret) pairs of non-empty str")
        checked.append(token)
    return checked


def url_arguments(url: str) -> tuple[str, str, str, bool, str, int | None]:
    """``app_id, key, secret, ssl, host, port`` (Pusher's first arguments) of a
    ``http[s]://KEY:SECRET@HOST[:PORT]/apps/APP_ID`` URL."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is None
        or parts.password is None
        or len(segments) != 2
        or segments[0] != "apps"
    ):
        raise PusherValueError("a Pusher URL looks like http[s]://KEY:SECRET@HOST[:PORT]/apps/APP_ID")
    try:
        url_port = parts.port
    except ValueError:
        raise PusherValueError("the port of the Pusher URL is not a number") from None
    return (
        unquote(segments[1]),
        unquote(parts.username),
        unquote(parts.password),
        parts.scheme == "https",
        parts.hostname,
        url_port,
    )


def choose_transport(
    transport: Transport | None,
    backend: Any,
    proxy: ProxySetting,
    backend_options: dict[str, Any],
    scheme: str,
    host: str,
    api_port: int,
) -> tuple[Transport, str | None]:
    """The transport, and the proxy it goes through (``None``: direct, or the given
    transport's own business)."""
    if backend_options:
        if backend is None or proxy is not None:
            raise PusherTypeError(f"unexpected arguments {sorted(backend_options)}")
        proxy = proxy_from_backend_options(backend_options, scheme)
    if transport is not None:
        if backend is not None:
            raise PusherTypeError("give transport= or backend=, not both")
        if isinstance(proxy, str):
            raise PusherTypeError("proxy= configures the default transport: give the proxy to your transport")
        if not isinstance(transport, Transport):
            raise PusherTypeError("transport must be a pusherlib Transport")
        return transport, None
    chosen = proxy_for(scheme, host, api_port, proxy)
    if backend is not None:
        mapped = transport_for_backend(backend, chosen)
        return mapped, chosen if isinstance(mapped, HTTPTransport) else None
    return HTTPTransport(proxy=chosen), chosen
