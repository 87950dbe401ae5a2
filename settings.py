"""The one place that reads the environment: :meth:`Settings.from_env` gives a checked,
immutable :class:`Settings`, or one :class:`ConfigError` naming every variable that is wrong,
so a misconfigured instance stops at start-up. What each variable means: docs/configuration.md;
which ones would open a hole (refused where ``GAE_ENV`` or ``K_SERVICE`` shows a
deployment): docs/security.md. Numbers are ASCII digits only (``int()`` also takes ``"٣"``).
"""

from __future__ import annotations

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
IAP_KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"  # IAP's signing keys, {kid: PEM}
MIN_PUSH_TOKEN_CHARS = 32
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,18})?")
_IAP_AUDIENCE = re.compile(r"/projects/[0-9]+/(?:apps/[a-z][-a-z0-9.:]*|global/backendServices/[0-9]+)")
_PUSH_TOKEN = re.compile(r"([A-Za-z0-9_.-]{1,64}):([A-Za-z0-9_.~+/=-]+)")


class ConfigError(RuntimeError):
    """Configuration variables are missing or malformed: ``problems`` says each."""

    def __init__(self, *problems: str):
        self.problems = problems
        listed = "\n".join(f"- {problem}" for problem in problems)
        super().__init__(
            problems[0] if len(problems) == 1 else f"{len(problems)} settings are wrong:\n{listed}"
        )


class _Problems:
    """The problems of several readings, raised together as one :class:`ConfigError`."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def read(self, reader: Callable[..., Any], *arguments: Any, fallback: Any = None) -> Any:
        """``reader(*arguments)``, or ``fallback`` with its problems noted."""
        try:
            return reader(*arguments)
        except ConfigError as exc:
            self.found.extend(exc.problems)
            return fallback

    def raise_any(self) -> None:
        if self.found:
            raise ConfigError(*self.found)


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
    max_payload_bytes: int = 10240  # Pusher's limit; dedicated clusters allow more

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PusherSettings:
        """Only the ``PUSHER_*`` variables (``os.environ`` by default): for code that needs a
        Pusher client and nothing of the queue's configuration."""
        return _pusher_settings(os.environ if environ is None else environ)

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
            max_payload_bytes=self.max_payload_bytes,
            **options,
        )


@dataclass(frozen=True)
class PublisherSettings:
    """Who may call ``POST /push``: services with a bearer token (``PUSH_TOKENS``, each
    ``name:token``) or a Google OIDC token for ``PUSH_OIDC_AUDIENCE`` from one of
    ``PUSH_OIDC_SERVICE_ACCOUNTS``; and how many events each caller may publish
    (``PUSH_RATE_LIMIT`` a second, bursts of ``PUSH_RATE_BURST``; 0: no limit)."""

    tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    oidc_audience: str | None = None
    service_accounts: frozenset[str] = frozenset()
    rate_per_second: int = 100
    burst: int = 200


@dataclass(frozen=True)
class Settings:
    """Everything the app is configured with."""

    pusher: PusherSettings
    tasks_backend: str = "cloudtasks"
    project: str | None = None
    location: str = "us-central1"
    emulator_host: str | None = None
    queue_name: str = "pusher"
    #: ``TASKS_QUEUE_SHARDS``: above 1, events go to ``<queue_name>-0`` ... ``-<N-1>`` by channel.
    queue_shards: int = 1
    worker_transport: str = "http"
    max_attempts: int = 20
    demo_mode: bool = False
    max_request_bytes: int = 64 * 1024
    #: The server (``main:rsgi_app``, see handlers/rsgi_bridge.py): ``APP_THREADS`` threads run
    #: the app in each process; a body must arrive whole within ``BODY_READ_TIMEOUT`` seconds.
    app_threads: int = 4
    body_read_timeout: float = 10.0
    #: Bodies read at once: ``PROVEN_REQUESTS`` for requests proven by their headers (queue
    #: tasks, ``PUSH_TOKENS`` publishers; more wait), ``UNPROVEN_BODIES`` for the rest (more
    #: are refused with 503 at once).
    proven_requests: int = 64
    unproven_bodies: int = 32
    oidc_audience: str | None = None
    oidc_service_account: str | None = None
    oidc_certs_url: str = GOOGLE_CERTS_URL
    http_target_url: str | None = None
    local_development: bool = False
    app_engine_standard: bool = False
    #: ``EXTRA_ROUTE_MODULES``: your modules with a ``routes(services)`` function, served after
    #: the app's own routes (see :mod:`handlers.extra_routes`).
    extra_route_modules: tuple[str, ...] = ()
    publishers: PublisherSettings = field(default_factory=PublisherSettings)
    iap_audience: str | None = None
    iap_keys_url: str = IAP_KEYS_URL
    # Parked events and the outbox (see pushqueue.parking, pushqueue.outbox).
    parked_store: str = "datastore"
    datastore_emulator_host: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check the environment (``os.environ`` by default): one :class:`ConfigError`
        names every variable that is missing or malformed."""
        env = os.environ if environ is None else environ
        problems = _Problems()
        read = problems.read
        backend = read(_choice, env, "TASKS_BACKEND", TASKS_BACKENDS, "cloudtasks", fallback="cloudtasks")
        project = env.get("GOOGLE_CLOUD_PROJECT") or None
        if backend == "cloudtasks" and not project:
            problems.found.append("GOOGLE_CLOUD_PROJECT must be set when TASKS_BACKEND=cloudtasks")
        fields = {
            "pusher": read(_pusher_settings, env),
            "tasks_backend": backend,
            "project": project,
            "location": env.get("TASKS_LOCATION") or "us-central1",
            "emulator_host": read(_host_port, env, "CLOUD_TASKS_EMULATOR_HOST"),
            "queue_name": env.get("TASKS_QUEUE") or "pusher",
            "queue_shards": read(_int, env, "TASKS_QUEUE_SHARDS", 1, 1),
            "worker_transport": read(_choice, env, "PUSHER_TRANSPORT", WORKER_TRANSPORTS, "http"),
            "max_attempts": read(_int, env, "PUSHER_MAX_ATTEMPTS", 20, 1),
            "max_request_bytes": read(_int, env, "MAX_REQUEST_BYTES", 64 * 1024, 1024),
            "app_threads": read(_int, env, "APP_THREADS", 8, 1),
            "body_read_timeout": read(_float, env, "BODY_READ_TIMEOUT", 10.0),
            "proven_requests": read(_int, env, "PROVEN_REQUESTS", 64, 1),
            "unproven_bodies": read(_int, env, "UNPROVEN_BODIES", 32, 1),
            "extra_route_modules": read(_module_names, env, "EXTRA_ROUTE_MODULES"),
            **read(_oidc_settings, env, backend, fallback={}),
            **read(_platform_settings, env, fallback={}),
            "demo_mode": read(_demo_mode, env),
            "publishers": read(_publisher_settings, env),
            "iap_audience": read(_iap_audience, env),
            "iap_keys_url": read(_url, env, "IAP_KEYS_URL") or IAP_KEYS_URL,
            **read(_datastore_settings, env, fallback={}),
        }
        problems.raise_any()
        return cls(**fields)

    def pusher_client(self, **options: Any) -> Pusher:
        """A :class:`Pusher` client for these settings and the configured transport."""
        if "transport" not in options and self.worker_transport == "urlfetch":
            from pusherlib.transports.urlfetch import UrlfetchTransport

            options["transport"] = UrlfetchTransport()
        return self.pusher.client(**options)


def _pusher_settings(env: Mapping[str, str]) -> PusherSettings:
    problems = _Problems()
    timeout = problems.read(_float, env, "PUSHER_TIMEOUT", 5.0)
    max_payload_bytes = problems.read(_int, env, "PUSHER_MAX_PAYLOAD_BYTES", 10240, 1)
    master_key = env.get("PUSHER_ENCRYPTION_MASTER_KEY_BASE64") or None
    url = env.get("PUSHER_URL")
    if url:
        problems.raise_any()
        try:
            client = Pusher.from_url(url, encryption_master_key_base64=master_key)
        except PusherError as exc:
            raise ConfigError(f"PUSHER_URL is malformed: {exc}") from None
        names = ("app_id", "key", "secret", "host", "port", "ssl")
        where = {name: getattr(client, name) for name in names}
    else:
        missing = [name for name in ("PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET") if not env.get(name)]
        if missing:
            problems.found.append(
                "set PUSHER_URL, or all of PUSHER_APP_ID, PUSHER_KEY and PUSHER_SECRET "
                f"(missing: {', '.join(missing)})"
            )
        where = {
            "app_id": env.get("PUSHER_APP_ID"),
            "key": env.get("PUSHER_KEY"),
            "secret": env.get("PUSHER_SECRET"),
            "cluster": env.get("PUSHER_CLUSTER") or None,
            "host": env.get("PUSHER_HOST") or None,
            "port": problems.read(_int, env, "PUSHER_PORT", None, 1),
            "ssl": problems.read(_bool, env, "PUSHER_SSL", True),
        }
        problems.raise_any()
    settings = PusherSettings(
        **where, timeout=timeout, encryption_master_key_base64=master_key, max_payload_bytes=max_payload_bytes
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
    if audience is not None and account is None:
        raise ConfigError(
            "TASKS_OIDC_AUDIENCE needs TASKS_OIDC_SERVICE_ACCOUNT: anyone can have Google sign a "
            "token for any audience, only the queue's service account proves the queue"
        )
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


def _demo_mode(env: Mapping[str, str]) -> bool:
    """``DEMO_MODE``, refused on a deployment: its rules trust a cookie anyone can set."""
    return _local_only(env, "DEMO_MODE", "let anyone sign in as anyone and read every encrypted channel")


def _local_only(env: Mapping[str, str], name: str, harm: str) -> bool:
    """The switch ``name``, refused where ``GAE_ENV`` or ``K_SERVICE`` shows a deployment, on
    which it would ``harm``."""
    on = _bool(env, name, False)
    deployed = _deployment(env)
    if on and deployed:
        raise ConfigError(
            f"{name} is for local development only; {deployed} shows a deployment, where it would {harm}"
        )
    return on


def _deployment(env: Mapping[str, str]) -> str | None:
    """The variable showing that the app is deployed (``GAE_ENV`` other than dev_appserver's
    ``localdev``, or Cloud Run's ``K_SERVICE``), or ``None`` when it runs locally."""
    if env.get("GAE_ENV", "localdev") != "localdev":
        return f"GAE_ENV={env['GAE_ENV']}"
    return "K_SERVICE" if env.get("K_SERVICE") else None


def _publisher_settings(env: Mapping[str, str]) -> PublisherSettings:
    """``PUSH_TOKENS`` (``name:token,...``), ``PUSH_OIDC_AUDIENCE`` with the
    ``PUSH_OIDC_SERVICE_ACCOUNTS`` it needs, ``PUSH_RATE_LIMIT`` and ``PUSH_RATE_BURST``."""
    tokens: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in (env.get("PUSH_TOKENS") or "").split(","))):
        match = _PUSH_TOKEN.fullmatch(entry)
        if match is None or len(match.group(2)) < MIN_PUSH_TOKEN_CHARS:
            name = entry.partition(":")[0][:64]  # never the token itself
            raise ConfigError(
                f"PUSH_TOKENS entries are name:token, the token at least {MIN_PUSH_TOKEN_CHARS} "
                f"characters of A-Z a-z 0-9 ._~+/=- (check the entry named {name!r})"
            )
        name, token = match.groups()
        if name in tokens:
            raise ConfigError(f"PUSH_TOKENS names {name!r} twice")
        tokens[name] = token
    audience = env.get("PUSH_OIDC_AUDIENCE") or None
    accounts = frozenset(
        filter(None, (a.strip() for a in (env.get("PUSH_OIDC_SERVICE_ACCOUNTS") or "").split(",")))
    )
    bad = sorted(account for account in accounts if not _EMAIL.fullmatch(account))
    if bad:
        raise ConfigError(f"PUSH_OIDC_SERVICE_ACCOUNTS must be service accounts' emails, got {bad[0]!r}")
    if bool(audience) != bool(accounts):
        raise ConfigError(
            "PUSH_OIDC_AUDIENCE and PUSH_OIDC_SERVICE_ACCOUNTS go together: a Google-signed token "
            "proves a caller only when its service account is one you named"
        )
    return PublisherSettings(
        tokens=tuple(tokens.items()),
        oidc_audience=audience,
        service_accounts=accounts,
        rate_per_second=_int(env, "PUSH_RATE_LIMIT", 100, minimum=0),
        burst=_int(env, "PUSH_RATE_BURST", 200, minimum=1),
    )


def _iap_audience(env: Mapping[str, str]) -> str | None:
    """``IAP_AUDIENCE``: what IAP signs its assertions for, ``/projects/NUMBER/apps/PROJECT``
    (App Engine) or ``/projects/NUMBER/global/backendServices/ID`` (a load balancer)."""
    audience = env.get("IAP_AUDIENCE") or None
    if audience is not None and not _IAP_AUDIENCE.fullmatch(audience):
        raise ConfigError(
            "IAP_AUDIENCE must be /projects/NUMBER/apps/PROJECT_ID or "
            f"/projects/NUMBER/global/backendServices/ID (see IAP's signed headers), got {audience!r}"
        )
    return audience


def whole_number(text: str) -> int | None:
    """``text`` as a whole number if it is 1 to 18 ASCII digits, else ``None`` (``int()``
    takes other scripts' digits, signs, spaces and ``_``; ``str.isdigit()`` takes ``"²"``)."""
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


def _platform_settings(env: Mapping[str, str]) -> dict[str, bool]:
    """Where the app runs, which decides what headers prove (docs/security.md): App Engine
    standard strips ``X-AppEngine-*``; local development believes them (refused deployed)."""
    local = _local_only(env, "ALLOW_UNVERIFIED_LOCAL_REQUESTS", "let anyone call the worker")
    return {"local_development": local, "app_engine_standard": env.get("GAE_ENV") == "standard"}


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _module_names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated Python module names (``a.b, c``), or ``()`` when unset."""
    names = tuple(part.strip() for part in (env.get(name) or "").split(",") if part.strip())
    for module in names:
        if not _MODULE_NAME.fullmatch(module):
            raise ConfigError(f"{name} lists Python modules separated by commas, got {module!r}")
    return names


def _datastore_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Where parked events and the outbox live: Datastore (or its emulator), or this
    process's memory in local development without the emulator."""
    emulator = _host_port(env, "DATASTORE_EMULATOR_HOST")
    local = _bool(env, "ALLOW_UNVERIFIED_LOCAL_REQUESTS", False)
    return {
        "parked_store": "memory" if local and emulator is None else "datastore",
        "datastore_emulator_host": emulator,
    }


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
    number = _number(env, name, _WHOLE_NUMBER, int, "a whole number (ASCII digits)")
    if number is None:
        return default
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    number = _number(env, name, _DECIMAL, float, "a number (ASCII digits, optionally with a '.')")
    if number is None:
        return default
    if number <= 0:  # ASCII digits only: never inf or nan
        raise ConfigError(f"{name} must be a positive number, got {number}")
    return number


def _number(
    env: Mapping[str, str], name: str, form: re.Pattern[str], parse: Callable[[str], Any], kind: str
) -> Any:
    """``env[name]`` parsed when it has ``form``, ``None`` when unset or empty."""
    value = env.get(name)
    if value is None or value == "":
        return None
    if not form.fullmatch(value):
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    return parse(value)


def _host_port(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or whole_number(port) is None:
        raise ConfigError(f"{name} must be host:port, got {value!r}")
    return value
