"""Building signed Pusher HTTP API requests, and reading their answers. No I/O here.

:class:`RequestBuilder` turns method arguments into :class:`~pusherlib.transports.Request`
objects: it validates them, encodes the data (encrypting it for ``private-encrypted-``
channels), and signs the request. :func:`read_response` turns what came back into the
parsed JSON or a :class:`~pusherlib.errors.PusherHTTPError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from . import encryption, validation
from .errors import PusherBadStatus, PusherTypeError, PusherValueError, error_for_status
from .signing import sign_request
from .transports.base import Request, Response

LIBRARY_HEADER = ("X-Pusher-Library", "pusherlib 1.0")
POST_HEADERS = (("Content-Type", "application/json"), LIBRARY_HEADER)
GET_HEADERS = (LIBRARY_HEADER,)

Event = Mapping[str, Any]
Channels = str | Iterable[str]  # one channel name, or a list of up to 100
Info = str | Iterable[str] | None  # attributes to return: "user_count,subscription_count" or a list


class RequestBuilder:
    """Validates, encodes and signs requests for one Pusher app."""

    def __init__(
        self,
        *,
        app_id: str,
        key: str,
        secret: str,
        scheme: str,
        host: str,
        port: int,
        timeout: float,
        encode_json: Callable[[Any], str],
        max_payload_bytes: int,
        master_key: bytes | None,
        clock: Callable[[], float] = time.time,
    ):
        self.app_id = app_id
        self.key = key
        self._secret = secret.encode("utf-8")
        self.scheme, self.host, self.port, self.timeout = scheme, host, port, timeout
        self.encode_json = encode_json
        self.max_payload_bytes = max_payload_bytes
        self._master_key = master_key
        self._clock = clock
        self._prefix = f"/apps/{quote(app_id, safe='')}"

    # -- events --------------------------------------------------------------------

    def trigger(
        self, channels: Channels, event_name: str, data: Any, socket_id: str | None = None, info: Info = None
    ) -> Request:
        """``POST /events``: one event on one or more channels."""
        return self._post("/events", self.trigger_body(channels, event_name, data, socket_id, info))

    def trigger_body(
        self, channels: Channels, event_name: str, data: Any, socket_id: str | None = None, info: Info = None
    ) -> dict[str, Any]:
        """The checked JSON body of :meth:`trigger`, unsigned (``"channels"``: the list of
        names); raises ``PusherValueError`` / ``PusherTypeError`` where Pusher would refuse."""
        names = validation.channel_list(channels)
        body: dict[str, Any] = {
            "name": validation.event_name(event_name),
            "channels": names,
            "data": self._event_data(names, data),
        }
        self._add_options(body, socket_id, info)
        return body

    def trigger_batch(self, events: Iterable[Event]) -> Request:
        """``POST /batch_events``: up to 10 events, each on its own channel."""
        if isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Iterable):
            raise PusherTypeError("events must be a list of {'channel', 'name', 'data'} dicts")
        batch = [self._batch_event(i, event) for i, event in enumerate(events)]
        if not batch:
            raise PusherValueError("a batch needs at least one event")
        if len(batch) > validation.MAX_BATCH_SIZE:
            raise PusherValueError(
                f"{len(batch)} events given; at most {validation.MAX_BATCH_SIZE} per batch"
            )
        return self._post("/batch_events", {"batch": batch})

    def send_to_user(self, user_id: str, event_name: str, data: Any) -> Request:
        """An event to every connection of one signed-in user."""
        channel = validation.SERVER_TO_USER_PREFIX + validation.user_id(user_id)
        return self.trigger(channel, event_name, data)

    def terminate_user_connections(self, user_id: str) -> Request:
        """``POST /users/<id>/terminate_connections``."""
        path = f"/users/{quote(validation.user_id(user_id), safe='')}/terminate_connections"
        return self._post(path, {})

    # -- queries -------------------------------------------------------------------

    def channels_info(self, prefix_filter: str | None = None, attributes: Iterable[str] = ()) -> Request:
        """``GET /channels``: the occupied channels, optionally by prefix."""
        params = {}
        if prefix_filter is not None:
            if not isinstance(prefix_filter, str):
                raise PusherTypeError("prefix_filter must be a str")
            params["filter_by_prefix"] = prefix_filter
        info = validation.info_attributes(attributes)
        if info:
            params["info"] = info
        return self._get("/channels", params)

    def channel_info(self, channel: str, attributes: Iterable[str] = ()) -> Request:
        """``GET /channels/<name>``: one channel's state."""
        info = validation.info_attributes(attributes)
        return self._get(f"/channels/{_path_segment(channel)}", {"info": info} if info else {})

    def users_info(self, channel: str) -> Request:
        """``GET /channels/<name>/users``: the members of a presence channel."""
        if not validation.channel_name(channel).startswith("presence-"):
            raise PusherValueError(f"users_info needs a presence- channel, got {channel!r}")
        return self._get(f"/channels/{_path_segment(channel)}/users", {})

    # -- building blocks -------------------------------------------------------------

    def encode_data(self, data: Any) -> str:
        """Event data as sent: a ``str`` as it is, anything else as JSON."""
        if isinstance(data, str):
            return data
        return json_text(self.encode_json, data, "event data")

    def _event_data(self, channels: list[str], data: Any) -> str:
        text = self.encode_data(data)
        validation.payload_size(text, self.max_payload_bytes)  # also refuses text that is not UTF-8
        encrypted = [c for c in channels if c.startswith(validation.ENCRYPTED_PREFIX)]
        if encrypted:
            if len(channels) > 1:
                raise PusherValueError(
                    "an event for a private-encrypted- channel must go to that channel alone"
                )
            text = encryption.encrypt(channels[0], text, self._master_key)
            validation.payload_size(text, self.max_payload_bytes)
        return text

    def _batch_event(self, index: int, event: Event) -> dict[str, Any]:
        if not isinstance(event, Mapping):
            raise PusherTypeError(f"batch event {index} must be a dict, not {type(event).__name__}")
        unknown = set(event) - {"channel", "name", "data", "socket_id", "info"}
        if unknown or "channel" not in event or "name" not in event or "data" not in event:
            raise PusherValueError(
                f"batch event {index} needs the keys channel, name and data "
                f"(socket_id and info are optional); got {sorted(event)}"
            )
        channel = validation.channel_name(event["channel"])
        item: dict[str, Any] = {
            "channel": channel,
            "name": validation.event_name(event["name"]),
            "data": self._event_data([channel], event["data"]),
        }
        self._add_options(item, event.get("socket_id"), event.get("info"))
        return item

    @staticmethod
    def _add_options(body: dict[str, Any], socket_id: str | None, info: Any) -> None:
        # An empty socket_id (a form field left blank) excludes nobody, as in the official library.
        if socket_id is not None and socket_id != "":
            body["socket_id"] = validation.socket_id(socket_id)
        attributes = validation.info_attributes(info)
        if attributes:
            body["info"] = attributes

    def _post(self, path: str, body: dict[str, Any]) -> Request:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self._request("POST", path, {}, payload, POST_HEADERS)

    def _get(self, path: str, params: dict[str, str]) -> Request:
        return self._request("GET", path, params, None, GET_HEADERS)

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: bytes | None,
        headers: tuple[tuple[str, str], ...],
    ) -> Request:
        full_path = self._prefix + path
        signed = sign_request(self.key, self._secret, method, full_path, params, body, int(self._clock()))
        query = "&".join(f"{k}={quote(v, safe='-_.,')}" for k, v in signed.items())
        return Request(
            method, self.scheme, self.host, self.port, f"{full_path}?{query}", body, self.timeout, headers
        )


def json_text(encode: Callable[[Any], str], value: Any, what: str) -> str:
    """``encode(value)``; what JSON cannot hold (an object, NaN, an infinite float, a
    circular reference) raises ``PusherTypeError`` / ``PusherValueError`` naming ``what``."""
    try:
        return encode(value)
    except TypeError as exc:
        raise PusherTypeError(f"{what} cannot be encoded as JSON: {exc}") from None
    except ValueError as exc:
        raise PusherValueError(f"{what} cannot be encoded as JSON: {exc}") from None


def _path_segment(channel: str) -> str:
    return quote(validation.channel_name(channel), safe="-_.,;=@")


def read_response(response: Response) -> Any:
    """The parsed JSON of a successful answer; otherwise raise its ``PusherHTTPError``.

    A 2xx answer whose body is ``{"error": ..., "code": N}`` with N >= 400 is an error
    with status N: self-hosted soketi answers errors that way.
    """
    text = response.body.decode("utf-8", "replace")
    if not 200 <= response.status < 300:
        raise error_for_status(response.status, text)
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        raise PusherBadStatus(
            f"Pusher answered {response.status} with a body that is not JSON: {text[:200]!r}",
            status=response.status,
            body=text,
        ) from None
    if isinstance(parsed, dict) and "error" in parsed:
        code = parsed.get("code")
        if isinstance(code, int) and code >= 400:
            raise error_for_status(code, text, str(parsed["error"]))
    return parsed
