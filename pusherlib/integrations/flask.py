"""A Flask extension with Flask-Pusher's names: channel auth (batch too), user auth, webhooks.

Usage, routes and the move from Flask-Pusher: docs/pusherlib.md, 'Flask and Django'.
Deny by default: without ``@pusher.auth`` every private, presence and user-auth request gets 403."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import flask
from werkzeug.exceptions import RequestEntityTooLarge

from ..client import Pusher as PusherClient
from ..endpoints import (
    DEFAULT_MAX_BODY_BYTES,
    GROUP_ROUTES,
    PusherHooks,
    ReplayGuard,
    ReplayStore,
    answer_channel_auth,
    answer_user_auth,
    receive_webhook,
    refusal_json,
    reply_json,
)
from .shared import DEFAULT_ROUTES, AuthAnswer, client_from_config, first_values

EXTENSION_NAME = "pusher"

Handler = Callable[[], Any]


class FlaskWebhooks:
    """Flask-Pusher's ``@pusher.webhooks.presence`` etc.; a handler takes no argument, or the
    checked (decrypted) webhook."""

    def __init__(self, hooks: PusherHooks):
        self._hooks = hooks

    def _register(self, group: str, function: Handler) -> Handler:
        wants_webhook = _takes_an_argument(function)
        register = getattr(self._hooks.webhooks, group)
        register(lambda webhook, request: function(webhook) if wants_webhook else function())
        return function

    def channel_existence(self, function: Handler) -> Handler:
        """Handle webhooks received on ``/events/channel_existence``."""
        return self._register("channel_existence", function)

    def presence(self, function: Handler) -> Handler:
        """Handle webhooks received on ``/events/presence``."""
        return self._register("presence", function)

    def client(self, function: Handler) -> Handler:
        """Handle webhooks received on ``/events/client``."""
        return self._register("client", function)


class Pusher:
    """The extension: ``pusher.client`` is the pusherlib client (also
    ``current_app.extensions["pusher"]``)."""

    def __init__(
        self,
        app: flask.Flask | None = None,
        url_prefix: str = "/pusher",
        client: PusherClient | None = None,
        replay_guard: ReplayStore | None = None,
    ):
        self.hooks = PusherHooks()
        self.webhooks = FlaskWebhooks(self.hooks)
        self.url_prefix = url_prefix
        self.replay_guard: ReplayStore = replay_guard or ReplayGuard()
        self._client = client
        self._app: flask.Flask | None = None
        if app is not None:
            self.init_app(app)

    # -- setup --------------------------------------------------------------------------

    def init_app(self, app: flask.Flask) -> None:
        """Build the client from ``app.config`` (unless one was given) and add the routes."""
        if self._client is None:
            self._client = client_from_config(app.config.get, json_encoder=_encoder_of(app))
        app.extensions[EXTENSION_NAME] = self._client
        self.max_body_bytes = int(app.config.get("PUSHER_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES)
        app.register_blueprint(self.blueprint(app.config.get), url_prefix=self.url_prefix)
        self._app = app

    def blueprint(self, get: Callable[[str], Any]) -> flask.Blueprint:
        """The blueprint of the endpoints (routes moved by the ``PUSHER_*`` route names)."""
        blueprint = flask.Blueprint("pusher", __name__)
        route = {name: get(name) or default for name, default in DEFAULT_ROUTES.items()}
        blueprint.add_url_rule(route["PUSHER_AUTH"], "auth", self._channel_auth, methods=["POST"])
        blueprint.add_url_rule(route["PUSHER_USER_AUTH"], "user_auth", self._user_auth, methods=["POST"])
        blueprint.add_url_rule(route["PUSHER_WEBHOOKS"], "webhooks", self._webhook, methods=["POST"])
        blueprint.add_url_rule(
            "/events/<any(" + ", ".join(GROUP_ROUTES) + "):group>", "events", self._webhook, methods=["POST"]
        )
        return blueprint

    @property
    def client(self) -> PusherClient:
        """The pusherlib client."""
        if self._client is None:
            raise RuntimeError("call init_app(app) first: the client is built from the app's config")
        return self._client

    def __getattr__(self, name: str) -> Any:
        """Flask-Pusher forwards the client's methods: ``pusher.trigger(...)``."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.client, name)

    # -- Flask-Pusher's decorators ------------------------------------------------------

    def auth(self, function: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
        """``function(channel_name, socket_id)``: ``True`` lets the socket join."""
        self.hooks.authorizer(lambda request, channel, socket_id: function(channel, socket_id))
        return function

    def channel_data(self, function: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
        """``function(channel_name, socket_id)``: the presence member's data (``user_id``
        and ``user_info``, or Flask-Pusher's flat dict whose other keys become ``user_info``)."""
        self.hooks.channel_data(lambda request, channel, socket_id: function(channel, socket_id))
        return function

    def user_data(self, function: Callable[[str], Any]) -> Callable[[str], Any]:
        """``function(socket_id)``: the signed-in user for ``pusher:signin`` (``{"id": ...}``),
        or ``None`` when nobody is signed in."""
        self.hooks.user_data(lambda request, socket_id: function(socket_id))
        return function

    def on(self, event_name: str) -> Callable[[Callable[[dict], Any]], Callable[[dict], Any]]:
        """``@pusher.on("member_added")``: ``function(event)`` for each webhook event of that name."""

        def register(function: Callable[[dict], Any]) -> Callable[[dict], Any]:
            self.hooks.on(event_name)(lambda event, request: function(event))
            return function

        return register

    # -- views ----------------------------------------------------------------------------

    def _channel_auth(self) -> flask.Response:
        return self._answer(answer_channel_auth)

    def _user_auth(self) -> flask.Response:
        return self._answer(answer_user_auth)

    def _answer(self, answer: AuthAnswer) -> flask.Response:
        """Read the form, ask the core's ``answer``, write its reply."""
        fields = self._form()
        if isinstance(fields, flask.Response):
            return fields
        return _response(*reply_json(answer(self.client, self.hooks, flask.request, fields)))

    def _webhook(self, group: str | None = None) -> flask.Response:
        body = self._body()
        if isinstance(body, flask.Response):
            return body
        request = flask.request
        reply = receive_webhook(
            self.client,
            self.hooks,
            self.replay_guard,
            request,
            key=request.headers.get("X-Pusher-Key"),
            signature=request.headers.get("X-Pusher-Signature"),
            body=body,
            group=group,
        )
        return _response(*reply_json(reply))

    def _form(self) -> dict[str, str] | flask.Response:
        """The form fields, or a 413 answer when the body is above the limit."""
        body = self._body()
        return body if isinstance(body, flask.Response) else first_values(flask.request.form)

    def _body(self) -> bytes | flask.Response:
        """The body, read once; 413 above the limit, declared or not (werkzeug silently cuts a
        chunked body at ``max_content_length``, so one byte more is read)."""
        request = flask.request
        limit = self.max_body_bytes
        too_large = _response(*refusal_json(413, f"the body is larger than {limit} bytes"))
        if request.content_length is not None and request.content_length > limit:
            return too_large
        request.max_content_length = limit + 1
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return too_large
        return too_large if len(body) > limit else body


def _encoder_of(app: flask.Flask) -> type[json.JSONEncoder] | None:
    """A JSON encoder writing what the app's JSON provider writes, or ``None`` without a ``default``."""
    default = getattr(app.json, "default", None)
    if not callable(default):
        return None

    class AppJSONEncoder(json.JSONEncoder):
        def default(self, o: Any) -> Any:
            return default(o)

    return AppJSONEncoder


def _takes_an_argument(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a positional argument (Flask-Pusher's handlers take none)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a callable whose signature cannot be read: give it the webhook
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)


def _response(body: bytes, status: int, headers: dict[str, str]) -> flask.Response:
    return flask.Response(body, status=status, headers=headers)
