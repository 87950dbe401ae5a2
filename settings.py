"""The one place that reads the environment.

:func:`Settings.from_env` turns environment variables into a checked, immutable
:class:`Settings`; a missing or malformed variable raises :class:`ConfigError` naming it,
so a misconfigured instance fails at start-up instead of on the first request.

OIDC (see :mod:`pushqueue.oidc`): ``TASKS_OIDC_AUDIENCE`` makes the worker require a
Google-signed ID token for that audience (``TASKS_OIDC_SERVICE_ACCOUNT``, when set, must be
its ``email``; ``TASKS_OIDC_CERTS_URL`` is where Google's certs are fetched).
``TASKS_HTTP_TARGET_URL``, the worker's origin (``https://host[:port]``), with
``TASKS_OIDC_SERVICE_ACCOUNT`` makes Cloud Tasks send tasks there as HTTP targets carrying
a token for ``TASKS_OIDC_AUDIENCE``, or for the origin itself when no audience is set;
the worker then always checks tokens.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pusherlib import Pusher, PusherError

TASKS_BACKENDS = ("cloudtasks", "taskqueue")
WORKER_TRANSPORTS = ("http", "urlfetch", "ndb")
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"  # Google's ID-token certs, {kid: PEM}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ConfigError(RuntimeError):
    """A configuration variable is missing or malformed."""


@dataclass(frozen=True)
class PusherSettings:
    """How to reach Pusher: ``PUSHER_URL``, or the ``PUSHER_*`` parts."""

    app_id: str
    key: str
    secret: str = field(repr=False)
    cluster: str | None = None
    host: str | None = None
    port: int | None = None
    ssl: bool = True
    timeout: float = 5.0
    encryption_master_key_base64: str | None = field(default=None, repr=False)

    def client(self, **options: Any) -> Pusher:
        """A :class:`Pusher` client for these settings (``options``: more keyword arguments)."""
        return Pusher(
            self.app_id,
            self.key,
            self.secret,
            cluster=self.cluster,
            host=self.host,
            port=self.port,
            ssl=self.ssl,
            timeout=self.timeout,
            encryption_master_key_base64=self.encryption_master_key_base64,
            **options,
        )


@dataclass(frozen=True)
class Settings:
    """Everything the app is configured with."""

    pusher: PusherSettings
    tasks_backend: str = "cloudtasks"
    project: str | None = None
    location: str = "us-central1"
    emulator_host: str | None = None
    queue_name: str = "pusher"
    parked_queue_name: str = "pusher-parked"
    parked_pull_queue_name: str = "pusher-parked-pull"
    worker_transport: str = "http"
    max_attempts: int = 20
    demo_mode: bool = False
    max_request_bytes: int = 64 * 1024
    oidc_audience: str | None = None
    oidc_service_account: str | None = None
    oidc_certs_url: str = GOOGLE_CERTS_URL
    http_target_url: str | None = None
    local_development: bool = False
    app_engine_standard: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check the environment (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        backend = _choice(env, "TASKS_BACKEND", TASKS_BACKENDS, "cloudtasks")
        project = env.get("GOOGLE_CLOUD_PROJECT") or None
        if backend == "cloudtasks" and not project:
            raise ConfigError("GOOGLE_CLOUD_PROJECT must be set when TASKS_BACKEND=cloudtasks")
        return cls(
            pusher=_pusher_settings(env),
            tasks_backend=backend,
            project=project,
            location=env.get("TASKS_LOCATION") or "us-central1",
            emulator_host=_host_port(env, "CLOUD_TASKS_EMULATOR_HOST"),
            queue_name=env.get("TASKS_QUEUE") or "pusher",
            parked_queue_name=env.get("TASKS_PARKED_QUEUE") or "pusher-parked",
            parked_pull_queue_name=env.get("TASKS_PARKED_PULL_QUEUE") or "pusher-parked-pull",
            worker_transport=_choice(env, "PUSHER_TRANSPORT", WORKER_TRANSPORTS, "http"),
            max_attempts=_int(env, "PUSHER_MAX_ATTEMPTS", 20, minimum=1),
            demo_mode=_bool(env, "DEMO_MODE", False),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 64 * 1024, minimum=1024),
            **_oidc_settings(env, backend),
            **_platform_settings(env),
        )

    def pusher_client(self, **options: Any) -> Pusher:
        """A :class:`Pusher` client for these settings and the configured transport."""
        if "transport" not in options and self.worker_transport == "urlfetch":
            from pusherlib.transports.urlfetch import UrlfetchTransport

            options["transport"] = UrlfetchTransport()
        return self.pusher.client(**options)


def _pusher_settings(env: Mapping[str, str]) -> PusherSettings:
    timeout = _float(env, "PUSHER_TIMEOUT", 5.0)
    master_key = env.get("PUSHER_ENCRYPTION_MASTER_KEY_BASE64") or None
    url = env.get("PUSHER_URL")
    if url:
        try:
            client = Pusher.from_url(url, encryption_master_key_base64=master_key)
        except PusherError as exc:
            raise ConfigError(f"PUSHER_URL is malformed: {exc}") from None
        return PusherSettings(
            client.app_id,
            client.key,
            client.secret,
            host=client.host,
            port=client.port,
            ssl=client.ssl,
            timeout=timeout,
            encryption_master_key_base64=master_key,
        )
    missing = [name for name in ("PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET") if not env.get(name)]
    if missing:
        raise ConfigError(
            "set PUSHER_URL, or all of PUSHER_APP_ID, PUSHER_KEY and PUSHER_SECRET "
            f"(missing: {', '.join(missing)})"
        )
    settings = PusherSettings(
        env["PUSHER_APP_ID"],
        env["PUSHER_KEY"],
        env["PUSHER_SECRET"],
        cluster=env.get("PUSHER_CLUSTER") or None,
        host=env.get("PUSHER_HOST") or None,
        port=_int(env, "PUSHER_PORT", None, minimum=1),
        ssl=_bool(env, "PUSHER_SSL", True),
        timeout=timeout,
        encryption_master_key_base64=master_key,
    )
    try:  # the client checks app id, port and master key
        settings.client()
    except PusherError as exc:
        raise ConfigError(f"PUSHER_* settings are invalid: {exc}") from None
    return settings


def _oidc_settings(env: Mapping[str, str], backend: str) -> dict[str, Any]:
    """The OIDC fields: the worker's token checks and the HTTP target tasks are sent to."""
    audience = env.get("TASKS_OIDC_AUDIENCE") or None
    if audience is not None and audience != audience.strip():
        raise ConfigError(f"TASKS_OIDC_AUDIENCE must not start or end with spaces, got {audience!r}")
    account = env.get("TASKS_OIDC_SERVICE_ACCOUNT") or None
    if account is not None and not _EMAIL.fullmatch(account):
        raise ConfigError(f"TASKS_OIDC_SERVICE_ACCOUNT must be a service account's email, got {account!r}")
    target = _url(env, "TASKS_HTTP_TARGET_URL")
    if target is not None:
        if backend != "cloudtasks":
            raise ConfigError("TASKS_HTTP_TARGET_URL needs TASKS_BACKEND=cloudtasks")
        if account is None:
            raise ConfigError(
                "TASKS_HTTP_TARGET_URL needs TASKS_OIDC_SERVICE_ACCOUNT: "
                "tasks sent to an HTTP target must carry an OIDC token"
            )
        target = target.rstrip("/")
        if urlsplit(target).path:
            raise ConfigError(f"TASKS_HTTP_TARGET_URL must be an origin, with no path, got {target!r}")
        # Outside App Engine anyone can forge the queue headers: the worker always checks tokens.
        audience = audience or target
    return {
        "oidc_audience": audience,
        "oidc_service_account": account,
        "oidc_certs_url": _url(env, "TASKS_OIDC_CERTS_URL") or GOOGLE_CERTS_URL,
        "http_target_url": target,
    }


def _platform_settings(env: Mapping[str, str]) -> dict[str, bool]:
    """Where the app runs, which decides what a request's headers prove.

    ``app_engine_standard`` (``GAE_ENV=standard``): App Engine strips ``X-AppEngine-*``
    headers from outside requests, so they prove a task. ``local_development``
    (``ALLOW_UNVERIFIED_LOCAL_REQUESTS=1``, set by ``make dev`` and the tests): queue headers
    are believed without proof; refused where ``GAE_ENV`` or ``K_SERVICE`` shows a deployment.
    """
    local = _bool(env, "ALLOW_UNVERIFIED_LOCAL_REQUESTS", False)
    deployed = [name for name in ("GAE_ENV", "K_SERVICE") if env.get(name)]
    if local and deployed:
        raise ConfigError(
            f"ALLOW_UNVERIFIED_LOCAL_REQUESTS is for local development only; {deployed[0]} "
            "shows a deployment, where it would let anyone call the worker"
        )
    return {"local_development": local, "app_engine_standard": env.get("GAE_ENV") == "standard"}


def _url(env: Mapping[str, str], name: str) -> str | None:
    """An absolute http(s) URL without query or fragment, or ``None`` when unset."""
    value = env.get(name)
    if not value:
        return None
    try:
        parts = urlsplit(value)
        plain = not (parts.query or parts.fragment)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0 and plain
    except ValueError:  # a bad port or IPv6 literal
        valid = False
    if not valid:
        raise ConfigError(f"{name} must be an http(s) URL without query or fragment, got {value!r}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false (1/0), got {value!r}")


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int) -> Any:
    number = _number(env, name, int, "a whole number")
    if number is None:
        return default
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    number = _number(env, name, float, "a number")
    if number is None:
        return default
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name} must be a positive finite number, got {number}")
    return number


def _number(env: Mapping[str, str], name: str, parse: Callable[[str], Any], kind: str) -> Any:
    """``env[name]`` parsed, or ``None`` when unset or empty."""
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return parse(value)
    except ValueError:
        raise ConfigError(f"{name} must be {kind}, got {value!r}") from None


def _host_port(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{name} must be host:port, got {value!r}")
    return value
