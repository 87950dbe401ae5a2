"""The OIDC token Cloud Tasks sends to HTTP targets: checked by the worker, carried by tasks.

Google's side is played by a local certificate server in Google's v1 format (``{kid: PEM
certificate}``, with ``Cache-Control: max-age``) and RSA keys made here; tokens are signed
with google-auth as Google signs them. The worker runs through WebTest with a real soketi
and subscriber; the HTTP-target tasks go through the Cloud Tasks emulator, which sends
``X-CloudTasks-*`` headers but no token (it ignores ``oidc_token``), so the end-to-end test
adds the ``Authorization`` header Cloud Tasks would add.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import webtest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

import pushqueue
from handlers import worker
from handlers.application import create_app
from handlers.wiring import backend_for, http_target_for
from pushqueue.cloudtasks import HttpTarget
from pushqueue.oidc import CertsUnavailable, GoogleCerts, OidcVerifier, TokenRefused
from pushqueue.tasks import build_task
from settings import GOOGLE_CERTS_URL, ConfigError, Settings
from tests.support.appserver import running_app
from tests.support.emulator import running_emulator
from tests.support.processes import free_port, wait_until

AUDIENCE = "https://worker.example.com"
ACCOUNT = "tasks@test-project.iam.gserviceaccount.com"
QUEUE_HEADERS = {"X-CloudTasks-QueueName": "pusher", "X-CloudTasks-TaskName": "t1"}


# -- Google's side: keys, certificates, tokens ------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An RSA key with its self-signed certificate, published under ``kid``."""

    kid: str
    private_key: rsa.RSAPrivateKey
    certificate_pem: str

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        return cls(kid, key, certificate.public_bytes(serialization.Encoding.PEM).decode())

    def token(self, kid: str | None = None, alg: str | None = None, **changes: object) -> str:
        """An ID token as Cloud Tasks gets it for ``ACCOUNT``; ``changes`` replace claims
        (``None`` removes one); ``kid=""`` leaves the key id out."""
        signer = crypt.RSASigner(self.private_key, key_id=self.kid if kid is None else kid or None)
        header = {"alg": alg} if alg else None
        return jwt.encode(signer, id_token_claims(**changes), header=header).decode()


def id_token_claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims = {
        "aud": AUDIENCE,
        "iss": "https://accounts.google.com",
        "sub": "109876543210",
        "email": ACCOUNT,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
        **changes,
    }
    return {name: value for name, value in claims.items() if value is not None}


class CertsServer:
    """Google's certificate endpoint on a free port: ``{kid: PEM}`` of ``keys``, counted."""

    def __init__(self, keys: list[SigningKey], cache_control: str = "public, max-age=600"):
        self.keys, self.cache_control = list(keys), cache_control
        self.status, self.delay, self.fetches = 200, 0.0, 0
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/oauth2/v1/certs"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        certs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                certs.fetches += 1
                time.sleep(certs.delay)
                body = json.dumps({key.kid: key.certificate_pem for key in certs.keys}).encode()
                self.send_response(certs.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", certs.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        return Handler

    def __enter__(self) -> CertsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return SigningKey.generate("key-1")


@pytest.fixture(scope="module")
def impostor_key() -> SigningKey:
    """Another key claiming Google's key id: its signatures must not verify."""
    return SigningKey.generate("key-1")


@pytest.fixture
def certs_server(google_key) -> Iterator[CertsServer]:
    with CertsServer([google_key]) as server:
        yield server


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the worker through WebTest ---------------------------------------------------------------


def oidc_env(certs_url: str) -> dict[str, str]:
    return {
        "TASKS_OIDC_AUDIENCE": AUDIENCE,
        "TASKS_OIDC_SERVICE_ACCOUNT": ACCOUNT,
        "TASKS_OIDC_CERTS_URL": certs_url,
    }


@pytest.fixture
def make_app(soketi):
    """``make_app(**env)``: the worker's routes as a TestApp (bundled-queue settings)."""

    def make(**env: str) -> webtest.TestApp:
        settings = Settings.from_env({"TASKS_BACKEND": "taskqueue", "PUSHER_URL": soketi.url, **env})
        return webtest.TestApp(create_app(settings, [worker.routes], app_engine_apis=False))

    yield make
    pushqueue.configure(None)


@pytest.fixture
def app(make_app, certs_server):
    return make_app(**oidc_env(certs_server.url))


def post_task(
    app, path: str, token: str | None, body: object = None, *, status: int | str = "*", queue_headers=True
):
    """Post ``body`` (default ``{"n": 1}``) to the worker with ``token``, as the queue would."""
    headers = dict(QUEUE_HEADERS) if queue_headers else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps({"n": 1} if body is None else body)
    return app.post(path, data, headers=headers, content_type="application/json", status=status)


def test_a_valid_token_is_delivered_and_never_logged(app, google_key, subscriber, capsys):
    subscriber.subscribe("oidc-valid")
    token = google_key.token()
    assert post_task(app, "/worker/push/oidc-valid/ev", token).json == {"outcome": "delivered"}
    assert json.loads(subscriber.event("ev", "oidc-valid")["data"]) == {"n": 1}
    logged = capsys.readouterr().out
    assert '"outcome": "delivered"' in logged and token not in logged


def hours_from_now(hours: int) -> int:
    return int(time.time()) + hours * 3600


REFUSED = {
    "no token": (lambda key: None, 401, "Bearer token is required"),
    "wrong audience": (lambda key: key.token(aud="https://other.example.com"), 401, "another audience"),
    "wrong issuer": (lambda key: key.token(iss="https://evil.example.com"), 401, "not issued by Google"),
    "no issuer": (lambda key: key.token(iss=None), 401, "not issued by Google"),
    "expired": (
        lambda key: key.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        401,
        "expired",
    ),
    "issued in the future": (lambda key: key.token(iat=hours_from_now(1)), 401, "too early"),
    "no expiry": (lambda key: key.token(exp=None), 401, "exp"),
    "unknown key id": (lambda key: key.token(kid="key-unknown"), 401, "not one of Google's"),
    "no key id": (lambda key: key.token(kid=""), 401, "not one of Google's"),
    "HS256 header": (lambda key: key.token(alg="HS256"), 401, "RS256"),
    "malformed": (lambda key: "not-a.jwt", 401, "malformed token"),
    "another account": (lambda key: key.token(email="intruder@evil.iam.gserviceaccount.com"), 403, "account"),
    "unverified email": (lambda key: key.token(email_verified=False), 403, "account"),
    "no email": (lambda key: key.token(email=None), 403, "account"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_refused_token_triggers_nothing_and_is_not_logged(app, google_key, subscriber, capsys, case):
    make_token, status, message = REFUSED[case]
    channel = f"oidc-refused-{case.replace(' ', '-')}"
    subscriber.subscribe(channel)
    token = make_token(google_key)
    response = post_task(app, f"/worker/push/{channel}/forged", token, status=status)
    assert message in response.json["error"]
    assert response.headers.get("WWW-Authenticate") == ("Bearer" if status == 401 else None)
    post_task(app, f"/worker/push/{channel}/sentinel", google_key.token(), status=200)
    subscriber.event("sentinel", channel)  # sent after the refused one: it would have arrived first
    assert [m for m in subscriber.events if m.get("event") == "forged"] == []
    logged = capsys.readouterr().out
    [refusal] = [json.loads(line) for line in logged.splitlines() if "worker request refused" in line]
    assert refusal["status"] == status and message in refusal["reason"] and refusal["task"] == "t1"
    assert token is None or token not in logged


def test_a_token_signed_by_another_key_is_refused(app, impostor_key, subscriber, capsys):
    subscriber.subscribe("oidc-impostor")
    token = impostor_key.token()
    response = post_task(app, "/worker/push/oidc-impostor/forged", token, status=401)
    assert "signature" in response.json["error"]
    assert subscriber.drain(0.3) == []
    assert token not in capsys.readouterr().out


def test_a_valid_token_without_the_queue_headers_is_still_refused(app, google_key):
    response = post_task(app, "/worker/push/ch/ev", google_key.token(), status=403, queue_headers=False)
    assert "task queue" in response.json["error"]


def test_certificates_are_fetched_once_for_many_tasks(app, google_key, certs_server, subscriber):
    subscriber.subscribe("oidc-many")
    for n in range(20):
        post_task(app, "/worker/push/oidc-many/ev", google_key.token(sub=str(n)), {"n": n}, status=200)
    received = sorted(json.loads(subscriber.event("ev", "oidc-many")["data"])["n"] for _ in range(20))
    assert received == list(range(20))
    assert certs_server.fetches == 1


def test_certificates_that_cannot_be_fetched_get_503(make_app, google_key, subscriber, capsys):
    app = make_app(**oidc_env(f"http://127.0.0.1:{free_port()}/certs"))  # nothing listens
    subscriber.subscribe("oidc-no-certs")
    response = post_task(app, "/worker/push/oidc-no-certs/ev", google_key.token(), status=503)
    assert response.json["error"] == "the token cannot be checked now"
    assert subscriber.drain(0.3) == []
    assert "cannot fetch" in capsys.readouterr().out


def test_without_an_audience_cloud_tasks_headers_prove_nothing(make_app, certs_server, subscriber):
    """Nothing strips X-CloudTasks-* headers, even on App Engine: without a token they are
    believed only with the local-development switch."""
    subscriber.subscribe("oidc-off")
    for deployed in ({}, {"GAE_ENV": "standard"}):
        app = make_app(TASKS_OIDC_CERTS_URL=certs_server.url, **deployed)
        response = post_task(app, "/worker/push/oidc-off/ev", None, body={"n": 0}, status=403)
        assert "OIDC" in response.json["error"]
    local = make_app(TASKS_OIDC_CERTS_URL=certs_server.url, ALLOW_UNVERIFIED_LOCAL_REQUESTS="1")
    assert post_task(local, "/worker/push/oidc-off/ev", None).json == {"outcome": "delivered"}
    assert json.loads(subscriber.event("ev", "oidc-off")["data"]) == {"n": 1}  # the first to arrive
    assert post_task(local, "/worker/push/oidc-off/ev", None, status=403, queue_headers=False)
    assert certs_server.fetches == 0


# -- the verifier and its certificate cache, without webapp2 -----------------------------------


def verifier(certs: GoogleCerts, account: str | None = ACCOUNT) -> OidcVerifier:
    return OidcVerifier(AUDIENCE, certs, service_account=account)


def test_both_issuer_spellings_are_accepted(certs_server, google_key):
    check = verifier(GoogleCerts(certs_server.url))
    for issuer in ("accounts.google.com", "https://accounts.google.com"):
        assert check.verify(f"Bearer {google_key.token(iss=issuer)}")["iss"] == issuer


def test_without_a_service_account_any_google_token_for_the_audience_passes(certs_server, google_key):
    token = google_key.token(email="someone@example.com", email_verified=None)
    assert verifier(GoogleCerts(certs_server.url), account=None).verify(f"bearer {token}")["aud"] == AUDIENCE


def test_certificates_are_fetched_again_after_max_age(certs_server, google_key):
    clock = Clock()
    certs = GoogleCerts(certs_server.url, clock=clock)
    assert certs.certificate("key-1") == google_key.certificate_pem
    clock.now += 599
    certs.certificate("key-1")
    assert certs_server.fetches == 1
    clock.now += 2
    certs.certificate("key-1")
    assert certs_server.fetches == 2


@pytest.mark.parametrize(
    ("cache_control", "kept", "refetched"),
    [
        ("no-cache", 59, 61),
        ("max-age=0", 59, 61),
        ("no-store, max-age=600", 59, 61),
        ("public", 299, 301),
        ("max-age=9999999", 86_399, 86_401),
    ],
)
def test_max_age_is_bounded(certs_server, cache_control, kept, refetched):
    certs_server.cache_control = cache_control
    clock = Clock()
    certs = GoogleCerts(certs_server.url, clock=clock)
    start = clock.now
    for offset, fetches in ((0, 1), (kept, 1), (refetched, 2)):
        clock.now = start + offset
        certs.certificate("key-1")
        assert certs_server.fetches == fetches, offset


def test_a_new_key_id_makes_it_fetch_again_at_most_once_per_interval(certs_server):
    clock = Clock()
    check = verifier(GoogleCerts(certs_server.url, refetch_interval=30, clock=clock))
    check.certs.certificate("key-1")
    rotated = SigningKey.generate("key-2")
    certs_server.keys.append(rotated)  # Google published a new key after our first fetch
    with pytest.raises(TokenRefused, match="not one of Google's"):  # fetched just now: not again
        check.verify(f"Bearer {rotated.token()}")
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert check.certs.certificate(kid) is None
    assert certs_server.fetches == 1
    clock.now += 31
    assert check.verify(f"Bearer {rotated.token()}")["email"] == ACCOUNT
    assert certs_server.fetches == 2
    assert check.certs.certificate("made-up-4") is None and certs_server.fetches == 2


def test_concurrent_first_use_fetches_once(certs_server, google_key):
    certs_server.delay = 0.2  # every thread arrives while the first fetch is under way
    check = verifier(GoogleCerts(certs_server.url))
    tokens = [google_key.token(sub=str(n)) for n in range(8)]
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda t=t: results.append(check.verify(f"Bearer {t}")["sub"]))
        for t in tokens
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [str(n) for n in range(8)]
    assert certs_server.fetches == 1


@pytest.mark.parametrize("status", [500, 404])
def test_an_error_answer_from_the_certs_server_is_unavailable(certs_server, status):
    certs_server.status = status
    with pytest.raises(CertsUnavailable, match=str(status)):
        GoogleCerts(certs_server.url).certificate("key-1")


def test_an_answer_that_is_not_certificates_is_unavailable(certs_server):
    certs_server.keys = []  # {}
    with pytest.raises(CertsUnavailable, match="JSON object of PEM"):
        GoogleCerts(certs_server.url).certificate("key-1")


# -- settings -----------------------------------------------------------------------------------


BASE_ENV = {"PUSHER_URL": "http://key:secret@127.0.0.1:1/apps/1", "GOOGLE_CLOUD_PROJECT": "p"}
TARGET_ENV = {"TASKS_HTTP_TARGET_URL": "https://w.example.com", "TASKS_OIDC_SERVICE_ACCOUNT": ACCOUNT}
TARGET_ENV = {"TASKS_HTTP_TARGET_URL": "https://w.example.com", "TASKS_OIDC_SERVICE_ACCOUNT": ACCOUNT}


def test_the_oidc_settings_are_read():
    settings = Settings.from_env(
        {
            **BASE_ENV,
            **oidc_env("http://127.0.0.1:9/certs"),
            "TASKS_HTTP_TARGET_URL": "https://worker.example.com/",
        }
    )
    assert settings.oidc_audience == AUDIENCE and settings.oidc_service_account == ACCOUNT
    assert settings.oidc_certs_url == "http://127.0.0.1:9/certs"
    assert settings.http_target_url == "https://worker.example.com"
    assert http_target_for(settings) == HttpTarget("https://worker.example.com", ACCOUNT, AUDIENCE)
    defaults = Settings.from_env(BASE_ENV)
    assert defaults.oidc_certs_url == GOOGLE_CERTS_URL and http_target_for(defaults) is None


def test_the_token_audience_defaults_to_the_target_origin():
    settings = Settings.from_env({**BASE_ENV, **TARGET_ENV})
    assert http_target_for(settings).audience == "https://w.example.com"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TASKS_OIDC_SERVICE_ACCOUNT": "not-an-email"}, "TASKS_OIDC_SERVICE_ACCOUNT"),
        ({"TASKS_OIDC_AUDIENCE": " https://a.example.com"}, "TASKS_OIDC_AUDIENCE"),
        ({"TASKS_OIDC_CERTS_URL": "ftp://example.com/certs"}, "TASKS_OIDC_CERTS_URL"),
        ({"TASKS_OIDC_CERTS_URL": "https://example.com:99999/certs"}, "TASKS_OIDC_CERTS_URL"),
        ({**TARGET_ENV, "TASKS_HTTP_TARGET_URL": "worker.example.com"}, "TASKS_HTTP_TARGET_URL"),
        ({**TARGET_ENV, "TASKS_HTTP_TARGET_URL": "https://w.example.com/x"}, "no path"),
        ({**TARGET_ENV, "TASKS_HTTP_TARGET_URL": "https://w.example.com?a=1"}, "query"),
        ({"TASKS_HTTP_TARGET_URL": "https://w.example.com"}, "TASKS_OIDC_SERVICE_ACCOUNT"),
        ({**TARGET_ENV, "TASKS_BACKEND": "taskqueue"}, "TASKS_BACKEND=cloudtasks"),
    ],
)
def test_bad_oidc_settings_name_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({**BASE_ENV, **env})


# -- HTTP-target tasks through the Cloud Tasks emulator ----------------------------------------


@pytest.mark.emulator
def test_http_target_tasks_carry_an_oidc_token():
    with running_emulator(free_port(), name="tasks-emulator-oidc") as emulator:
        env = {**BASE_ENV, **emulator.app_env(), **TARGET_ENV, "TASKS_OIDC_AUDIENCE": AUDIENCE}
        backend = backend_for(Settings.from_env(env))  # as the app makes it
        emulator.pause("pusher")  # keep the task to read it back
        task = build_task("/worker/push/ch/ev", payload='{"n": 1}', headers={"X-Pusher-Socket-Id": "1.2"})
        name = backend.add(task)
        [created] = emulator.tasks("pusher")
        assert created.name.endswith(f"/tasks/{name}") and "app_engine_http_request" not in created
        request = created.http_request
        assert request.url == "https://w.example.com/worker/push/ch/ev"
        assert request.http_method.name == "POST" and request.body == b'{"n": 1}'
        assert request.headers["X-Pusher-Socket-Id"] == "1.2"
        assert request.oidc_token.service_account_email == ACCOUNT
        assert request.oidc_token.audience == AUDIENCE
        backend.park(task, "parked-1")
        [parked] = backend.list_parked(10)
        assert parked.url == "/worker/push/ch/ev" and parked.body == b'{"n": 1}'
        assert emulator.tasks("pusher-parked")[0].http_request.oidc_token.audience == AUDIENCE


@contextmanager
def http_target_stack(env: dict[str, str]):
    """The emulator and the app, the app creating HTTP-target tasks to itself."""
    app_port = free_port()
    with running_emulator(app_port, name="tasks-emulator-oidc") as emulator:
        env = {**emulator.app_env(), "TASKS_HTTP_TARGET_URL": f"http://127.0.0.1:{app_port}", **env}
        with running_app(env, port=app_port, name="app-oidc") as app:
            yield emulator, app


@pytest.mark.emulator
def test_http_target_tasks_end_to_end(soketi, certs_server, google_key, subscriber):
    env = {"PUSHER_URL": soketi.url, **oidc_env(certs_server.url)}
    subscriber.subscribe("oidc-e2e")
    with http_target_stack(env) as (emulator, app):
        # The app's own task: the emulator sends it without a token, so it is refused and kept.
        assert app.client.post("/push/oidc-e2e/unsigned", json={"n": 1}).status_code == 202

        def pending() -> list:
            return emulator.tasks("pusher")

        wait_until(lambda: [t.last_attempt.response_status.code for t in pending()] == [401], 10, "a refusal")
        [task] = pending()
        assert task.http_request.url == f"{app.url}/worker/push/oidc-e2e/unsigned"
        assert task.http_request.oidc_token.service_account_email == ACCOUNT
        emulator.client.purge_queue(name=emulator.queue_path("pusher"))  # it would be retried for ever
        # A task with the header Cloud Tasks adds for an oidc_token: delivered.
        token = google_key.token()
        signed = {
            "url": f"{app.url}/worker/push/oidc-e2e/signed",
            "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            "body": b'{"n": 2}',
        }
        emulator.client.create_task(parent=emulator.queue_path("pusher"), task={"http_request": signed})
        assert json.loads(subscriber.event("signed", "oidc-e2e", timeout=10)["data"]) == {"n": 2}
        assert [m for m in subscriber.events if m.get("event") == "unsigned"] == []
        wait_until(lambda: not any(t.http_request.url == signed["url"] for t in pending()), 10, "its ack")
        log = app.log_path.read_text()
    assert "worker request refused" in log and token not in log
    assert certs_server.fetches == 1
