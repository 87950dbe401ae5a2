"""Building signed Pusher HTTP API requests (:class:`RequestBuilder`: validate, encode, encrypt,
sign) and reading their answers (:func:`read_response`). No I/O here."""

from __future__ import annotations

import json
import re
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

_PARAM_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SIGNING_PARAMS = frozenset({"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"})


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
        self,
        channels: Channels,
        event_name: str,
        data: Any,
        socket_id: str | None = None,
        info: Info = None,
        already_encoded: bool = False,
    ) -> Request:
        """``POST /events``: one event on one or more channels."""
        body = self.trigger_body(channels, event_name, data, socket_id, info, already_encoded)
        return self._post("/events", body)

    def trigger_body(
        self,
        channels: Channels,
        event_name: str,
        data: Any,
        socket_id: str | None = None,
        info: Info = None,
        already_encoded: bool = False,
    ) -> dict[str, Any]:
        """The checked, unsigned JSON body of :meth:`trigger`; raises where Pusher would refuse.
        ``already_encoded``: ``data`` is a final str, sent as it is (not encoded nor encrypted)."""
        names = validation.channel_list(channels)
        body: dict[str, Any] = {
            "name": validation.event_name(event_name),
            "channels": names,
            "data": self._event_data(names, data, already_encoded),
        }
        self._add_options(body, socket_id, info)
        return body

    def trigger_batch(self, events: Iterable[Event], already_encoded: bool = False) -> Request:
        """``POST /batch_events``: up to 10 events, each on its own channel
        (``already_encoded``: as in :meth:`trigger_body`, for every event)."""
        if isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Iterable):
            raise PusherTypeError("events must be a list of {'channel', 'name', 'data'} dicts")
        batch = [self._batch_event(i, event, already_encoded) for i, event in enumerate(events)]
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

    # -- any endpoint ----------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Request:
        """A signed ``GET`` of ``path`` (under ``/apps/<app_id>``) with query ``params``."""
        return self._get(_api_path(path), _query_params(params or {}))

    def post(self, path: str, body: Any) -> Request:
        """A signed ``POST`` of ``body`` to ``path`` (under ``/apps/<app_id>``): a str or
        bytes is sent as it is, anything else as JSON."""
        if isinstance(body, str):
            payload = body.encode("utf-8")
        elif isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
        else:
            payload = json_text(self.encode_json, body, "request body").encode("utf-8")
        return self._request("POST", _api_path(path), {}, payload, POST_HEADERS)

    # -- building blocks -------------------------------------------------------------

    def encode_data(self, data: Any) -> str:
        """Event data as sent: a ``str`` as it is, anything else as JSON."""
        if isinstance(data, str):
            return data
        return json_text(self.encode_json, data, "event data")

    def _event_data(self, channels: list[str], data: Any, already_encoded: bool = False) -> str:
        if already_encoded:
            if not isinstance(data, str):
                raise PusherTypeError(f"already_encoded data must be a str, not {type(data).__name__}")
            validation.payload_size(data, self.max_payload_bytes)
            if any(c.startswith(validation.ENCRYPTED_PREFIX) for c in channels) and not _sealed(data):
                raise PusherValueError(
                    "already_encoded data for a private-encrypted- channel must be already encrypted "
                    '({"nonce", "ciphertext"} JSON): plaintext would reach Pusher'
                )
            return data
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

    def _batch_event(self, index: int, event: Event, already_encoded: bool) -> dict[str, Any]:
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
            "data": self._event_data([channel], event["data"], already_encoded),
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


def _sealed(text: str) -> bool:
    """Whether ``text`` is an encrypted payload: JSON with str ``nonce`` and ``ciphertext``."""
    try:
        fields = json.loads(text)
    except ValueError:
        return False
    return isinstance(fields, dict) and all(isinstance(fields.get(k), str) for k in ("nonce", "ciphertext"))


def _api_path(path: str) -> str:
    """``path`` (``/channels/x``) with each segment URL-escaped; ``.``, ``..`` and empty
    segments are refused, so a request cannot leave ``/apps/<app_id>``."""
    if not isinstance(path, str):
        raise PusherTypeError(f"path must be a str, not {type(path).__name__}")
    segments = path.split("/")
    if not path.startswith("/") or any(s in ("", ".", "..") for s in segments[1:]):
        raise PusherValueError(f"path must look like /channels/name (under /apps/<app_id>), got {path!r}")
    return "/".join(quote(s, safe="-_.,;=@:~") for s in segments)


def _query_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters as the signature needs them: names of letters, digits, ``_`` and ``-``,
    values str or int; the signing parameters are refused."""
    if not isinstance(params, Mapping):
        raise PusherTypeError("params must be a dict of query parameters")
    checked = {}
    for name, value in params.items():
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name) or name in _SIGNING_PARAMS:
            raise PusherValueError(f"invalid query parameter name {name!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise PusherTypeError(f"query parameter {name} must be a str or int, not {type(value).__name__}")
        checked[name] = str(value)
    return checked


def _path_segment(channel: str) -> str:
    return quote(validation.channel_name(channel), safe="-_.,;=@")


def read_response(response: Response, decode: Callable[[str], Any] = json.loads) -> Any:
    """The parsed JSON of a successful answer, else raise its ``PusherHTTPError``; a 2xx
    ``{"error", "code": N >= 400}`` body (soketi's errors) is an error with status N."""
    text = response.body.decode("utf-8", "replace")
    if not 200 <= response.status < 300:
        raise error_for_status(response.status, text)
    if not text.strip():
        return {}
    try:
        parsed = decode(text)
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
