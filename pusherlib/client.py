"""The :class:`Pusher` client: the official library's methods, a transport underneath.

Every request method has an ``_async`` twin returning a future (see
:mod:`pusherlib.transports`); validation errors are raised at once by both.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

from . import auth, encryption
from .api import Channels, Event, Info, RequestBuilder, json_text, read_response
from .errors import PusherTypeError, PusherValueError
from .legacy import LegacyChannel
from .transports.base import Request, Transport
from .transports.http import HTTPTransport
from .webhooks import MAX_AGE_SECONDS, Webhook, WebhookRejected, check_webhook, webhook_from_request

DEFAULT_HOST = "api.pusherapp.com"


class Pusher:
    """A client of one Pusher Channels app.

    The arguments are the official library's. Also accepted, for the seeds' older code:
    ``encoder=`` (the old name of ``json_encoder``: a ``json.JSONEncoder`` subclass, e.g.
    one that writes datetimes) and a port given as a string of digits (``PUSHER_PORT = "80"``).
    """

    def __init__(
        self,
        app_id: str | int,
        key: str,
        secret: str,
        *,
        cluster: str | None = None,
        host: str | None = None,
        port: int | str | None = None,
        ssl: bool = True,
        timeout: float = 5,
        json_encoder: type[json.JSONEncoder] | None = None,
        encryption_master_key_base64: str | bytes | None = None,
        max_payload_bytes: int = 10240,
        transport: Transport | None = None,
        encoder: type[json.JSONEncoder] | None = None,
    ):
        for name, value in (("key", key), ("secret", secret)):
            if not isinstance(value, str) or not value:
                raise PusherTypeError(f"{name} must be a non-empty str")
        app_id = str(app_id) if isinstance(app_id, int) and not isinstance(app_id, bool) else app_id
        if not isinstance(app_id, str) or not app_id.isdigit():
            raise PusherValueError(f"app_id must be the app's number, got {app_id!r}")
        if host is None:
            host = f"api-{cluster}.pusher.com" if cluster else DEFAULT_HOST
        if isinstance(port, str) and port.isdigit():  # e.g. PUSHER_PORT = "80" in a config file
            port = int(port)
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise PusherValueError(f"port must be an int from 1 to 65535, got {port!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise PusherValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(max_payload_bytes, int) or max_payload_bytes <= 0:
            raise PusherValueError("max_payload_bytes must be a positive int")
        self.json_encoder = json_encoder or encoder
        if self.json_encoder is not None and not (
            isinstance(self.json_encoder, type) and issubclass(self.json_encoder, json.JSONEncoder)
        ):
            raise PusherTypeError("json_encoder must be a json.JSONEncoder subclass")
        encoder_cls = self.json_encoder or json.JSONEncoder
        self.app_id, self.key, self.secret = app_id, key, secret
        self._secret = secret.encode("utf-8")  # what the HMACs of auth answers and webhooks take
        self.cluster, self.host, self.ssl = cluster, host, bool(ssl)
        self.port = port or (443 if ssl else 80)
        self.timeout = timeout
        # JSON written as the official library writes it, so that browsers get the same
        # event data and auth answers are byte for byte the same; but never NaN or Infinity,
        # which are not JSON (JSON.parse refuses them): those raise PusherValueError.
        self._encode_json = encoder_cls(ensure_ascii=False, allow_nan=False).encode
        self._encode_auth_json = partial(json_text, encoder_cls(allow_nan=False).encode, what="auth data")
        self._master_key = (
            encryption.parse_master_key(encryption_master_key_base64)
            if encryption_master_key_base64
            else None
        )
        self.transport = transport or HTTPTransport()
        self._requests = RequestBuilder(
            app_id=app_id,
            key=key,
            secret=secret,
            scheme="https" if ssl else "http",
            host=host,
            port=self.port,
            timeout=timeout,
            encode_json=self._encode_json,
            max_payload_bytes=max_payload_bytes,
            master_key=self._master_key,
        )

    @property
    def requests(self) -> RequestBuilder:
        """The pure request builder behind every method: validate and sign without sending."""
        return self._requests

    # -- construction from configuration ------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Pusher:
        """``Pusher.from_url("https://key:secret@host[:port]/apps/ID")``."""
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
            port = parts.port
        except ValueError:
            raise PusherValueError("the port of the Pusher URL is not a number") from None
        return cls(
            segments[1],
            unquote(parts.username),
            unquote(parts.password),
            host=parts.hostname,
            port=port,
            ssl=parts.scheme == "https",
            **options,
        )

    @classmethod
    def from_env(cls, env: str = "PUSHER_URL", **options: Any) -> Pusher:
        """Configure from the URL in environment variable ``env``."""
        url = os.environ.get(env)
        if not url:
            raise PusherValueError(f"environment variable {env} is not set")
        return cls.from_url(url, **options)

    # -- events -----------------------------------------------------------------------

    def trigger(
        self, channels: Channels, event_name: str, data: Any, socket_id: str | None = None, info: Info = None
    ) -> dict[str, Any]:
        """Trigger ``event_name`` on one channel or a list of up to 100."""
        return self._send(self._requests.trigger(channels, event_name, data, socket_id, info))

    def trigger_async(
        self, channels: Channels, event_name: str, data: Any, socket_id: str | None = None, info: Info = None
    ) -> Any:
        """:meth:`trigger`, returning a future."""
        return self._send_async(self._requests.trigger(channels, event_name, data, socket_id, info))

    def trigger_batch(
        self, events: Iterable[Event] | None = None, *, batch: Iterable[Event] | None = None
    ) -> dict[str, Any]:
        """Trigger up to 10 events, each ``{"channel", "name", "data"}`` (+ ``socket_id``, ``info``).

        ``batch=`` is the official library's name for ``events``.
        """
        return self._send(self._requests.trigger_batch(_one_of(events, batch)))

    def trigger_batch_async(
        self, events: Iterable[Event] | None = None, *, batch: Iterable[Event] | None = None
    ) -> Any:
        """:meth:`trigger_batch`, returning a future."""
        return self._send_async(self._requests.trigger_batch(_one_of(events, batch)))

    def send_to_user(self, user_id: str, event_name: str, data: Any) -> dict[str, Any]:
        """Send an event to every connection of a signed-in user."""
        return self._send(self._requests.send_to_user(user_id, event_name, data))

    def send_to_user_async(self, user_id: str, event_name: str, data: Any) -> Any:
        """:meth:`send_to_user`, returning a future."""
        return self._send_async(self._requests.send_to_user(user_id, event_name, data))

    def terminate_user_connections(self, user_id: str) -> dict[str, Any]:
        """Disconnect every connection of a user."""
        return self._send(self._requests.terminate_user_connections(user_id))

    def terminate_user_connections_async(self, user_id: str) -> Any:
        """:meth:`terminate_user_connections`, returning a future."""
        return self._send_async(self._requests.terminate_user_connections(user_id))

    # -- queries ----------------------------------------------------------------------

    def channels_info(
        self, prefix_filter: str | None = None, attributes: Iterable[str] = ()
    ) -> dict[str, Any]:
        """The occupied channels (``{"channels": {name: {...}}}``), optionally by prefix."""
        return self._send(self._requests.channels_info(prefix_filter, attributes))

    def channels_info_async(self, prefix_filter: str | None = None, attributes: Iterable[str] = ()) -> Any:
        """:meth:`channels_info`, returning a future."""
        return self._send_async(self._requests.channels_info(prefix_filter, attributes))

    def channel_info(self, channel: str, attributes: Iterable[str] = ()) -> dict[str, Any]:
        """One channel's state: ``occupied`` and the requested ``attributes``."""
        return self._send(self._requests.channel_info(channel, attributes))

    def channel_info_async(self, channel: str, attributes: Iterable[str] = ()) -> Any:
        """:meth:`channel_info`, returning a future."""
        return self._send_async(self._requests.channel_info(channel, attributes))

    def users_info(self, channel: str) -> dict[str, Any]:
        """The users of a presence channel: ``{"users": [{"id": ...}, ...]}``."""
        return self._send(self._requests.users_info(channel))

    def users_info_async(self, channel: str) -> Any:
        """:meth:`users_info`, returning a future."""
        return self._send_async(self._requests.users_info(channel))

    # -- authentication -----------------------------------------------------------------

    @property
    def encrypted_channels_enabled(self) -> bool:
        """Whether ``private-encrypted-`` channels can be used: an encryption master key is set."""
        return self._master_key is not None

    def authenticate(
        self, channel: str, socket_id: str, custom_data: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        """The JSON answer that lets ``socket_id`` subscribe to a private/presence/encrypted channel."""
        return auth.authenticate_channel(
            key=self.key,
            secret=self._secret,
            channel=channel,
            socket_id=socket_id,
            custom_data=custom_data,
            master_key=self._master_key,
            encode_json=self._encode_auth_json,
        )

    authenticate_subscription = authenticate

    def authenticate_user(self, socket_id: str, user_data: Mapping[str, Any]) -> dict[str, str]:
        """The JSON answer to ``pusher:signin``: ``user_data`` needs an ``id``."""
        return auth.authenticate_user(
            key=self.key,
            secret=self._secret,
            socket_id=socket_id,
            user_data=user_data,
            encode_json=self._encode_auth_json,
        )

    # -- webhooks ---------------------------------------------------------------------

    def check_webhook(
        self,
        key: str | None,
        signature: str | None,
        body: str | bytes,
        *,
        max_age: float = MAX_AGE_SECONDS,
    ) -> dict[str, Any]:
        """The parsed webhook body when it is genuine and at most ``max_age`` seconds from
        now; else raise :class:`~pusherlib.webhooks.WebhookRejected` saying why."""
        return check_webhook(
            app_key=self.key, secret=self._secret, key=key, signature=signature, body=body, max_age=max_age
        )

    def validate_webhook(
        self, key: str | None, signature: str | None, body: str | bytes
    ) -> dict[str, Any] | None:
        """The parsed webhook body when it is genuine and recent, else ``None``."""
        try:
            return self.check_webhook(key, signature, body)
        except WebhookRejected:
            return None

    def webhook(self, body: str | bytes, key: str | None, signature: str | None) -> Webhook:
        """The older shape: an object with ``.valid()`` and ``.events()``."""
        return Webhook(self.validate_webhook(key, signature, body))

    def django_webhook(self, request: Any) -> Webhook:
        """:meth:`webhook` for a Django (or Flask, or WebOb) request object."""
        key, signature, body = webhook_from_request(request)
        return self.webhook(body, key, signature)

    # -- the older channel shape ----------------------------------------------------------

    def __getitem__(self, channel: str) -> LegacyChannel:
        """``pusher["channel"].trigger("event", data)``, as in the first App Engine wrapper."""
        return LegacyChannel(self, channel)

    # -- plumbing ---------------------------------------------------------------------

    def _send(self, request: Request) -> Any:
        return read_response(self.transport.send(request))

    def _send_async(self, request: Request) -> Any:
        return self.transport.request_async(request, read_response)

    def close(self) -> None:
        """Close the transport's connections."""
        self.transport.close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        scheme = "https" if self.ssl else "http"
        return f"<Pusher app {self.app_id} at {scheme}://{self.host}:{self.port}>"


def _one_of(events: Iterable[Event] | None, batch: Iterable[Event] | None) -> Iterable[Event]:
    """The events given as ``events`` or as ``batch=`` (exactly one of them)."""
    if events is not None and batch is None:
        return events
    if batch is not None and events is None:
        return batch
    raise PusherTypeError("trigger_batch takes the list of events once: events or batch=")


def pusher_from_url(url: str | None = None, **options: Any) -> Pusher:
    """The older module-level shortcut: ``url`` or ``$PUSHER_URL``."""
    return Pusher.from_url(url, **options) if url else Pusher.from_env("PUSHER_URL", **options)
