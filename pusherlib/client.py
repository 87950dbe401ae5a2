"""The :class:`Pusher` client: the official library's methods over a transport; each has an
``_async`` twin returning a future, and both raise validation errors at once."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from . import auth, config, encryption
from .api import Channels, Event, Info, RequestBuilder, json_text, read_response
from .errors import PusherHTTPError, PusherTypeError, PusherValueError
from .instrumentation import Instrumentation, RequestHook
from .legacy import LegacyChannel
from .proxies import ProxySetting
from .results import (
    BatchResponse,
    ChannelInfo,
    ChannelsResponse,
    TriggerResponse,
    UsersResponse,
    as_answer,
)
from .transports.base import Request, Response, Transport
from .webhooks import (
    MAX_AGE_SECONDS,
    Token,
    Webhook,
    WebhookRejected,
    check_webhook,
    decrypt_events,
    webhook_from_request,
)

DEFAULT_HOST = "api.pusherapp.com"
MAX_RETRY_WAIT_SECONDS = 1.0


class Pusher:
    """A client of one Pusher Channels app; positional arguments are the official library's.
    Own keyword arguments (``transport``, ``proxy``, ``retries``, ``on_request``,
    ``max_payload_bytes``, ``extra_webhook_tokens``...): docs/pusherlib.md."""

    def __init__(
        self,
        app_id: str | int,
        key: str,
        secret: str,
        ssl: bool = True,
        host: str | None = None,
        port: int | str | None = None,
        timeout: float = 5,
        cluster: str | None = None,
        encryption_master_key: str | bytes | None = None,
        encryption_master_key_base64: str | bytes | None = None,
        json_encoder: type[json.JSONEncoder] | None = None,
        json_decoder: type[json.JSONDecoder] | None = None,
        backend: Any = None,
        *,
        max_payload_bytes: int = 10240,
        transport: Transport | None = None,
        proxy: ProxySetting = None,
        on_request: RequestHook | None = None,
        retries: int = 0,
        extra_webhook_tokens: Iterable[Token] = (),
        encoder: type[json.JSONEncoder] | None = None,
        **backend_options: Any,
    ):
        config.check_credentials(key, secret)
        app_id = config.app_id(app_id)
        if host is None:
            host = f"api-{cluster}.pusher.com" if cluster else DEFAULT_HOST
        port = config.port(port)
        config.check_limits(timeout, max_payload_bytes, retries)
        self.json_encoder = config.json_class(json_encoder or encoder, json.JSONEncoder, "json_encoder")
        self.json_decoder = config.json_class(json_decoder, json.JSONDecoder, "json_decoder")
        self._decode_json: Callable[[str], Any] = partial(json.loads, cls=json_decoder)
        encoder_cls = self.json_encoder or json.JSONEncoder
        self.app_id, self.key, self.secret = app_id, key, secret
        self._secret = secret.encode("utf-8")  # what the HMACs of auth answers and webhooks take
        self.cluster, self.host, self.ssl = cluster, host, bool(ssl)
        self.port = port or (443 if ssl else 80)
        self.timeout = timeout
        self.retries = retries
        self.extra_webhook_tokens = config.webhook_tokens(extra_webhook_tokens)
        # JSON written as the official library writes it, so that browsers get the same
        # event data and auth answers are byte for byte the same; but never NaN or Infinity,
        # which are not JSON (JSON.parse refuses them): those raise PusherValueError.
        self._encode_json = encoder_cls(ensure_ascii=False, allow_nan=False).encode
        self._encode_auth_json = partial(json_text, encoder_cls(allow_nan=False).encode, what="auth data")
        self._master_key = encryption.master_key(encryption_master_key, encryption_master_key_base64)
        self.transport, self.proxy = config.choose_transport(
            transport, backend, proxy, backend_options, "https" if ssl else "http", host, self.port
        )
        self._instrumentation = Instrumentation(on_request)
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
        return cls(*config.url_arguments(url), **options)

    @classmethod
    def from_env(cls, env: str = "PUSHER_URL", **options: Any) -> Pusher:
        """Configure from the URL in environment variable ``env``."""
        url = os.environ.get(env)
        if not url:
            raise PusherValueError(f"environment variable {env} is not set")
        return cls.from_url(url, **options)

    # -- events -----------------------------------------------------------------------

    def trigger(
        self,
        channels: Channels,
        event_name: str,
        data: Any,
        socket_id: str | None = None,
        info: Info = None,
        already_encoded: bool = False,
    ) -> TriggerResponse:
        """Trigger ``event_name`` on one channel or up to 100; ``info`` asks for counts (in the answer's
        ``.channels``); ``already_encoded``: ``data`` is a str sent as it is."""
        request = self._requests.trigger(channels, event_name, data, socket_id, info, already_encoded)
        return self.send_request(request, self.read_trigger)

    def trigger_async(
        self,
        channels: Channels,
        event_name: str,
        data: Any,
        socket_id: str | None = None,
        info: Info = None,
        already_encoded: bool = False,
    ) -> Any:
        """:meth:`trigger`, returning a future."""
        request = self._requests.trigger(channels, event_name, data, socket_id, info, already_encoded)
        return self.send_request_async(request, self.read_trigger)

    def trigger_batch(
        self,
        events: Iterable[Event] | None = None,
        already_encoded: bool = False,
        *,
        batch: Iterable[Event] | None = None,
    ) -> BatchResponse:
        """Trigger up to 10 events ``{"channel", "name", "data"}`` (``batch=`` is the official
        name); counts asked with ``info`` are in the answer's ``.batch``."""
        request = self._requests.trigger_batch(_one_of(events, batch), already_encoded)
        return self.send_request(request, self._reader(BatchResponse))

    def trigger_batch_async(
        self,
        events: Iterable[Event] | None = None,
        already_encoded: bool = False,
        *,
        batch: Iterable[Event] | None = None,
    ) -> Any:
        """:meth:`trigger_batch`, returning a future."""
        request = self._requests.trigger_batch(_one_of(events, batch), already_encoded)
        return self.send_request_async(request, self._reader(BatchResponse))

    def send_to_user(self, user_id: str, event_name: str, data: Any) -> dict[str, Any]:
        """Send an event to every connection of a signed-in user."""
        return self.send_request(self._requests.send_to_user(user_id, event_name, data))

    def send_to_user_async(self, user_id: str, event_name: str, data: Any) -> Any:
        """:meth:`send_to_user`, returning a future."""
        return self.send_request_async(self._requests.send_to_user(user_id, event_name, data))

    def terminate_user_connections(self, user_id: str) -> dict[str, Any]:
        """Disconnect every connection of a user."""
        return self.send_request(self._requests.terminate_user_connections(user_id))

    def terminate_user_connections_async(self, user_id: str) -> Any:
        """:meth:`terminate_user_connections`, returning a future."""
        return self.send_request_async(self._requests.terminate_user_connections(user_id))

    # -- any endpoint ---------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """A signed ``GET`` of any endpoint under ``/apps/<app_id>``: ``get("/channels",
        {"filter_by_prefix": "presence-"})``. Returns the parsed JSON answer."""
        return self.send_request(self._requests.get(path, params))

    def get_async(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """:meth:`get`, returning a future."""
        return self.send_request_async(self._requests.get(path, params))

    def post(self, path: str, body: Any) -> Any:
        """A signed ``POST`` to any endpoint under ``/apps/<app_id>``: ``body`` is sent as
        JSON (a str or bytes as it is). Returns the parsed JSON answer."""
        return self.send_request(self._requests.post(path, body))

    def post_async(self, path: str, body: Any) -> Any:
        """:meth:`post`, returning a future."""
        return self.send_request_async(self._requests.post(path, body))

    # -- queries ----------------------------------------------------------------------

    def channels_info(
        self, prefix_filter: str | None = None, attributes: Iterable[str] = ()
    ) -> ChannelsResponse:
        """The occupied channels (``.channels``: name -> counts), optionally by prefix."""
        request = self._requests.channels_info(prefix_filter, attributes)
        return self.send_request(request, self._reader(ChannelsResponse))

    def channels_info_async(self, prefix_filter: str | None = None, attributes: Iterable[str] = ()) -> Any:
        """:meth:`channels_info`, returning a future."""
        request = self._requests.channels_info(prefix_filter, attributes)
        return self.send_request_async(request, self._reader(ChannelsResponse))

    def channel_info(self, channel: str, attributes: Iterable[str] = ()) -> ChannelInfo:
        """One channel's state: ``.occupied`` and the requested ``attributes``' counts."""
        return self.send_request(self._requests.channel_info(channel, attributes), self._reader(ChannelInfo))

    def channel_info_async(self, channel: str, attributes: Iterable[str] = ()) -> Any:
        """:meth:`channel_info`, returning a future."""
        request = self._requests.channel_info(channel, attributes)
        return self.send_request_async(request, self._reader(ChannelInfo))

    def users_info(self, channel: str) -> UsersResponse:
        """The users of a presence channel: ``.users``, their ids (``{"users": [{"id"}]}``)."""
        return self.send_request(self._requests.users_info(channel), self._reader(UsersResponse))

    def users_info_async(self, channel: str) -> Any:
        """:meth:`users_info`, returning a future."""
        return self.send_request_async(self._requests.users_info(channel), self._reader(UsersResponse))

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
        extra_tokens: Iterable[Token] = (),
    ) -> dict[str, Any]:
        """The parsed webhook body when genuine (app key or ``extra_tokens``) and at most ``max_age``
        seconds old, encrypted data decrypted; else raise ``WebhookRejected``; ``body``: raw str or bytes."""
        webhook = check_webhook(
            app_key=self.key,
            secret=self._secret,
            key=key,
            signature=signature,
            body=body,
            max_age=max_age,
            extra_tokens=[*self.extra_webhook_tokens, *config.webhook_tokens(extra_tokens)],
            decode=self._decode_json if self.json_decoder else None,
        )
        if self._master_key is not None:
            decrypt_events(webhook, self._master_key)
        return webhook

    def validate_webhook(
        self,
        key: str | None,
        signature: str | None,
        body: str | bytes,
        extra_tokens: Iterable[Token] = (),
    ) -> dict[str, Any] | None:
        """The parsed webhook body when it is genuine and recent, else ``None``."""
        try:
            return self.check_webhook(key, signature, body, extra_tokens=extra_tokens)
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

    def _read(self, response: Response) -> Any:
        return read_response(response, self._decode_json)

    def read_trigger(self, response: Response) -> TriggerResponse:
        """The answer to a trigger request as a :class:`~pusherlib.results.TriggerResponse`."""
        return as_answer(TriggerResponse, self._read(response))

    def _reader(self, kind: type[dict]) -> Callable[[Response], Any]:
        """A reader of answers as ``kind`` (one of :mod:`pusherlib.results`' dicts)."""
        return lambda response: as_answer(kind, self._read(response))

    def send_request(self, request: Request, read: Callable[[Response], Any] | None = None) -> Any:
        """Send a built request and return ``read(response)``; each attempt is reported and a
        retryable failure sent again up to ``retries`` times."""
        read = read or self._read
        report = self._instrumentation.report
        attempt = 1
        while True:
            started = time.perf_counter()
            status = None
            try:
                response = self.transport.send(request)
                status = response.status
                value = read(response)
            except PusherHTTPError as exc:
                report(request, started, attempt, exc.status, exc)
                if not exc.retryable or attempt > self.retries:
                    raise
                time.sleep(min(0.1 * 2 ** (attempt - 1), MAX_RETRY_WAIT_SECONDS))
                attempt += 1
                continue
            report(request, started, attempt, status)
            return value

    def send_request_async(self, request: Request, read: Callable[[Response], Any] | None = None) -> Any:
        """:meth:`send_request` through the transport's futures, without retries."""
        read = read or self._read
        report = self._instrumentation.report
        started = time.perf_counter()
        answered = False

        def read_and_report(response: Response) -> Any:
            nonlocal answered
            answered = True
            try:
                value = read(response)
            except PusherHTTPError as exc:
                report(request, started, 1, exc.status, exc)
                raise
            report(request, started, 1, response.status)
            return value

        def report_failure(future: Any) -> None:
            error = future.exception()
            if not answered and isinstance(error, PusherHTTPError):
                report(request, started, 1, error.status, error)

        future = self.transport.request_async(request, read_and_report)
        add_done_callback = getattr(future, "add_done_callback", None)
        if callable(add_done_callback):
            add_done_callback(report_failure)
        return future

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
