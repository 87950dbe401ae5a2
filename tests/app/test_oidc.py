"""The OIDC token Cloud Tasks sends to HTTP targets: checked by the worker, carried by tasks.

Google's side is played by a local server publishing RSA keys made here as Google does
(:mod:`tests.support.google_keys`: the v1 ``{kid: PEM certificate}`` map the app reads, the
v3 JWK set, ``Cache-Control: max-age``), failing or hanging when a test says; tokens are
signed with google-auth as Google signs them. The worker runs through WebTest with a real soketi
and subscriber; the HTTP-target tasks go through the Cloud Tasks emulator, which sends
``X-CloudTasks-*`` headers but no token (it ignores ``oidc_token``), so the end-to-end test
adds the ``Authorization`` header Cloud Tasks would add.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import webtest

import pushqueue
from access.oidc import STALE_GRACE, CertsUnavailable, GoogleCerts, OidcVerifier, TokenRefused
from handlers import worker
from handlers.application import create_app
from handlers.wiring import backend_for, http_target_for
from pushqueue.cloudtasks import HttpTarget
from pushqueue.parking import MemoryParking
from pushqueue.tasks import build_task
from settings import GOOGLE_CERTS_URL, ConfigError, Settings
from tests.support.appserver import running_app
from tests.support.emulator import running_emulator
from tests.support.google_keys import ID_TOKEN_JWKS, GoogleKeysServer, SigningKey, hs256_forgery
from tests.support.processes import free_port, wait_until

AUDIENCE = "https://worker.example.com"
ACCOUNT = "tasks@test-project.iam.gserviceaccount.com"
QUEUE_HEADERS = {"X-CloudTasks-QueueName": "pusher", "X-CloudTasks-TaskName": "t1"}


# -- Google's side: keys, certificates, tokens ------------------------------------------------


def id_token(key: SigningKey, kid: str | None = None, alg: str | None = None, **changes: object) -> str:
    """An ID token as Cloud Tasks gets it for ``ACCOUNT``; ``changes`` replace claims
    (``None`` removes one); ``kid=""`` leaves the key id out."""
    return key.sign(id_token_claims(**changes), kid, alg)


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


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return SigningKey.generate("key-1")


@pytest.fixture(scope="module")
def impostor_key() -> SigningKey:
    """Another key claiming Google's key id: its signatures must not verify."""
    return SigningKey.generate("key-1")


@pytest.fixture
def certs_server(google_key) -> Iterator[GoogleKeysServer]:
    with GoogleKeysServer([google_key]) as server:
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
def make_app(soketi, request):
    """``make_app(**env)``: the worker's routes as a TestApp (bundled-queue settings); without
    the local-development switch, parked events go to the Datastore emulator, as deployed."""

    def make(**env: str) -> webtest.TestApp:
        base = {"TASKS_BACKEND": "taskqueue", "PUSHER_URL": soketi.url}
        if env.get("ALLOW_UNVERIFIED_LOCAL_REQUESTS") != "1":
            base.update(request.getfixturevalue("datastore").app_env())
        settings = Settings.from_env({**base, **env})
        return webtest.TestApp(create_app(settings, [worker.routes], app_engine_apis=False))

    yield make
    pushqueue.configure(None)


@pytest.fixture
def app(make_app, certs_server):
    return make_app(**oidc_env(certs_server.url()))


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
    token = id_token(google_key)
    assert post_task(app, "/worker/push/oidc-valid/ev", token).json == {"outcome": "delivered"}
    assert json.loads(subscriber.event("ev", "oidc-valid")["data"]) == {"n": 1}
    logged = capsys.readouterr().out
    assert '"outcome": "delivered"' in logged and token not in logged


def hours_from_now(hours: int) -> int:
    return int(time.time()) + hours * 3600


NOT_GOOGLE = "the token was not issued by Google"
NOT_GOOGLES_KEY = "the token's signing key is not one of Google's"
NOT_THE_ACCOUNT = "the token is not the queue's service account's"
REFUSED = {
    "no token": (lambda key: None, 401, "an Authorization: Bearer token is required"),
    "wrong audience": (
        lambda key: id_token(key, aud="https://other.example.com"),
        401,
        "the token is for another audience",
    ),
    "wrong issuer": (lambda key: id_token(key, iss="https://evil.example.com"), 401, NOT_GOOGLE),
    "issuer with the google host as a prefix": (
        lambda key: id_token(key, iss="https://accounts.google.com.evil.example"),
        401,
        NOT_GOOGLE,
    ),
    "issuer with the google host in a path": (
        lambda key: id_token(key, iss="https://evil.example/accounts.google.com"),
        401,
        NOT_GOOGLE,
    ),
    "issuer with the google host and a port": (
        lambda key: id_token(key, iss="https://accounts.google.com:443"),
        401,
        NOT_GOOGLE,
    ),
    "no issuer": (lambda key: id_token(key, iss=None), 401, NOT_GOOGLE),
    "expired": (
        lambda key: id_token(key, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        401,
        "Token expired",
    ),
    "issued in the future": (lambda key: id_token(key, iat=hours_from_now(1)), 401, "Token used too early"),
    "no expiry": (lambda key: id_token(key, exp=None), 401, "Token does not contain required claim exp"),
    "unknown key id": (lambda key: id_token(key, kid="key-unknown"), 401, NOT_GOOGLES_KEY),
    "no key id": (lambda key: id_token(key, kid=""), 401, NOT_GOOGLES_KEY),
    "HS256 header": (lambda key: id_token(key, alg="HS256"), 401, "the token must be signed with RS256"),
    "HS256 with the published certificate as secret": (
        lambda key: hs256_forgery(id_token_claims(), key.kid, key.pem),
        401,
        "the token must be signed with RS256",
    ),
    "malformed": (lambda key: "not-a.jwt", 401, "malformed token"),
    "another account": (
        lambda key: id_token(key, email="intruder@evil.iam.gserviceaccount.com"),
        403,
        NOT_THE_ACCOUNT,
    ),
    "unverified email": (lambda key: id_token(key, email_verified=False), 403, NOT_THE_ACCOUNT),
    "no email": (lambda key: id_token(key, email=None), 403, NOT_THE_ACCOUNT),
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
    post_task(app, f"/worker/push/{channel}/sentinel", id_token(google_key), status=200)
    subscriber.event("sentinel", channel)  # sent after the refused one: it would have arrived first
    assert [m for m in subscriber.events if m.get("event") == "forged"] == []
    logged = capsys.readouterr().out
    [refusal] = [json.loads(line) for line in logged.splitlines() if "worker request refused" in line]
    assert refusal["status"] == status and message in refusal["reason"] and refusal["task"] == "t1"
    assert token is None or token not in logged


def test_a_token_signed_by_another_key_is_refused(app, impostor_key, subscriber, pusher, capsys):
    subscriber.subscribe("oidc-impostor")
    token = id_token(impostor_key)
    response = post_task(app, "/worker/push/oidc-impostor/forged", token, status=401)
    assert "signature" in response.json["error"]
    assert subscriber.events_before_sentinel(pusher, "oidc-impostor") == []
    assert token not in capsys.readouterr().out


def test_a_valid_token_without_the_queue_headers_is_still_refused(app, google_key):
    response = post_task(app, "/worker/push/ch/ev", id_token(google_key), status=403, queue_headers=False)
    assert "task queue" in response.json["error"]


def test_certificates_are_fetched_once_for_many_tasks(app, google_key, certs_server, subscriber):
    subscriber.subscribe("oidc-many")
    for n in range(20):
        post_task(app, "/worker/push/oidc-many/ev", id_token(google_key, sub=str(n)), {"n": n}, status=200)
    received = sorted(json.loads(subscriber.event("ev", "oidc-many")["data"])["n"] for _ in range(20))
    assert received == list(range(20))
    assert certs_server.fetches == 1


def test_certificates_that_cannot_be_fetched_get_503(make_app, google_key, subscriber, pusher, capsys):
    app = make_app(**oidc_env(f"http://127.0.0.1:{free_port()}/certs"))  # nothing listens
    subscriber.subscribe("oidc-no-certs")
    response = post_task(app, "/worker/push/oidc-no-certs/ev", id_token(google_key), status=503)
    assert response.json["error"] == "the token cannot be checked now"
    assert subscriber.events_before_sentinel(pusher, "oidc-no-certs") == []
    assert "cannot fetch" in capsys.readouterr().out


def test_without_an_audience_cloud_tasks_headers_prove_nothing(make_app, certs_server, subscriber):
    """Nothing strips X-CloudTasks-* headers, even on App Engine: without a token they are
    believed only with the local-development switch."""
    subscriber.subscribe("oidc-off")
    for deployed in ({}, {"GAE_ENV": "standard"}):
        app = make_app(TASKS_OIDC_CERTS_URL=certs_server.url(), **deployed)
        response = post_task(app, "/worker/push/oidc-off/ev", None, body={"n": 0}, status=403)
        assert "OIDC" in response.json["error"]
    local = make_app(TASKS_OIDC_CERTS_URL=certs_server.url(), ALLOW_UNVERIFIED_LOCAL_REQUESTS="1")
    assert post_task(local, "/worker/push/oidc-off/ev", None).json == {"outcome": "delivered"}
    assert json.loads(subscriber.event("ev", "oidc-off")["data"]) == {"n": 1}  # the first to arrive
    assert post_task(local, "/worker/push/oidc-off/ev", None, status=403, queue_headers=False)
    assert certs_server.fetches == 0


# -- the verifier and its certificate cache, without webapp2 -----------------------------------


def verifier(certs: GoogleCerts, account: str | None = ACCOUNT) -> OidcVerifier:
    return OidcVerifier(AUDIENCE, certs, service_account=account)


def test_both_issuer_spellings_are_accepted(certs_server, google_key):
    check = verifier(GoogleCerts(certs_server.url()))
    for issuer in ("accounts.google.com", "https://accounts.google.com"):
        assert check.verify(f"Bearer {id_token(google_key, iss=issuer)}")["iss"] == issuer


def test_without_a_service_account_any_google_token_for_the_audience_passes(certs_server, google_key):
    token = id_token(google_key, email="someone@example.com", email_verified=None)
    assert (
        verifier(GoogleCerts(certs_server.url()), account=None).verify(f"bearer {token}")["aud"] == AUDIENCE
    )


def test_certificates_are_fetched_again_after_max_age(certs_server, google_key):
    clock = Clock()
    certs = GoogleCerts(certs_server.url(), clock=clock)
    assert certs.certs("key-1") == {"key-1": google_key.pem}
    clock.now += 599
    certs.certs("key-1")
    assert certs_server.fetches == 1
    clock.now += 2
    certs.certs("key-1")
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
    certs = GoogleCerts(certs_server.url(), clock=clock)
    start = clock.now
    for offset, fetches in ((0, 1), (kept, 1), (refetched, 2)):
        clock.now = start + offset
        certs.certs("key-1")
        assert certs_server.fetches == fetches, offset


def test_a_new_key_id_makes_it_fetch_again_at_most_once_per_interval(certs_server):
    clock = Clock()
    check = verifier(GoogleCerts(certs_server.url(), refetch_interval=30, clock=clock))
    check.certs.certs("key-1")
    rotated = SigningKey.generate("key-2")
    certs_server.id_token_keys.append(rotated)  # Google published a new key after our first fetch
    with pytest.raises(TokenRefused, match="not one of Google's"):  # fetched just now: not again
        check.verify(f"Bearer {id_token(rotated)}")
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert kid not in check.certs.certs(kid)
    assert certs_server.fetches == 1
    clock.now += 31
    assert check.verify(f"Bearer {id_token(rotated)}")["email"] == ACCOUNT
    assert certs_server.fetches == 2
    assert "made-up-4" not in check.certs.certs("made-up-4") and certs_server.fetches == 2


def verify_at_once(check: OidcVerifier, key: SigningKey, count: int = 8) -> list[object]:
    """``count`` threads verifying a token each at the same moment: each one's ``sub``
    (``"0"``...), or the exception it raised."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def verify(n: int) -> None:
        token = id_token(key, sub=str(n))
        barrier.wait()
        try:
            results[n] = check.verify(f"Bearer {token}")["sub"]
        except Exception as exc:  # returned for the test to inspect
            results[n] = exc

    threads = [threading.Thread(target=verify, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


ACCEPTED = [str(n) for n in range(8)]


def test_concurrent_first_use_fetches_once(certs_server, google_key):
    certs_server.delay = 0.2  # every thread arrives while the first fetch is under way
    assert verify_at_once(verifier(GoogleCerts(certs_server.url())), google_key) == ACCEPTED
    assert certs_server.fetches == 1


@pytest.mark.parametrize("failure", ["503", "hang"])
def test_a_failed_refresh_keeps_the_cached_keys_fetching_once_then_backing_off(
    certs_server, google_key, failure
):
    clock = Clock()
    check = verifier(GoogleCerts(certs_server.url(), timeout=1, clock=clock))
    assert verify_at_once(check, google_key, 1) == ["0"] and certs_server.fetches == 1
    clock.now += 601  # past max-age=600
    if failure == "503":
        certs_server.status = 503
    else:
        certs_server.delay = 3  # longer than the timeout
    assert verify_at_once(check, google_key) == ACCEPTED  # with the cached keys
    assert certs_server.fetches == 2  # one refresh tried; the others did not wait for it
    clock.now += 1.9  # the backoff (2 s) is not over: nobody fetches
    assert verify_at_once(check, google_key) == ACCEPTED and certs_server.fetches == 2
    clock.now += 0.2
    assert verify_at_once(check, google_key) == ACCEPTED and certs_server.fetches == 3
    certs_server.status, certs_server.delay = 200, 0  # Google answers again
    clock.now += 3.9  # the backoff doubled: 4 s
    assert verify_at_once(check, google_key) == ACCEPTED and certs_server.fetches == 3
    clock.now += 0.2
    assert verify_at_once(check, google_key) == ACCEPTED and certs_server.fetches == 4
    clock.now += 599  # fresh keys again: no fetch before their max-age
    assert verify_at_once(check, google_key) == ACCEPTED and certs_server.fetches == 4


def test_cached_keys_serve_a_day_past_their_max_age_then_the_token_cannot_be_checked(
    certs_server, google_key
):
    clock = Clock()
    check = verifier(GoogleCerts(certs_server.url(), clock=clock))
    assert verify_at_once(check, google_key, 1) == ["0"]
    certs_server.status = 500
    clock.now += 600 + STALE_GRACE - 1
    assert verify_at_once(check, google_key) == ACCEPTED and certs_server.fetches == 2
    clock.now += 2
    results = verify_at_once(check, google_key)
    assert all(isinstance(result, CertsUnavailable) for result in results), results
    assert certs_server.fetches == 3


def test_without_cached_keys_a_failed_fetch_refuses_all_and_is_tried_once(certs_server, google_key):
    certs_server.status = 503
    clock = Clock()
    check = verifier(GoogleCerts(certs_server.url(), timeout=1, clock=clock))
    results = verify_at_once(check, google_key)
    assert certs_server.fetches == 1  # the 7 others waited for it, then saw it fail
    assert all(isinstance(result, CertsUnavailable) for result in results), results
    assert "503" in str(results[0]) and "next try in 2 s" in str(results[0])
    certs_server.status = 200
    clock.now += 2
    assert verify_at_once(check, google_key) == ACCEPTED and certs_server.fetches == 2


def test_a_jwk_set_is_not_read_the_kid_pem_map_is(certs_server):
    """Google publishes both; google-auth checks against the ``{kid: PEM}`` map."""
    with pytest.raises(CertsUnavailable, match=r"JSON object of PEM keys \(\{kid: PEM\}\)"):
        GoogleCerts(certs_server.url(ID_TOKEN_JWKS)).certs("key-1")


@pytest.mark.parametrize("status", [500, 404])
def test_an_error_answer_from_the_certs_server_is_unavailable(certs_server, status):
    certs_server.status = status
    with pytest.raises(CertsUnavailable, match=str(status)):
        GoogleCerts(certs_server.url()).certs("key-1")


def test_an_answer_that_is_not_certificates_is_unavailable(certs_server):
    certs_server.id_token_keys = []  # {}
    with pytest.raises(CertsUnavailable, match="JSON object of PEM keys"):
        GoogleCerts(certs_server.url()).certs("key-1")


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
        backend = backend_for(Settings.from_env(env), MemoryParking())  # as the app makes it
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
        # A parked event's replay is an HTTP-target task with its token too.
        parking = MemoryParking()
        parking.park(task, "parked-1")
        parking.replay("parked-1", backend.add)
        [replayed] = [t for t in emulator.tasks("pusher") if t.name.endswith("/tasks/parked-1-replay")]
        assert replayed.http_request.body == b'{"n": 1}'
        assert replayed.http_request.oidc_token.audience == AUDIENCE


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
    env = {"PUSHER_URL": soketi.url, **oidc_env(certs_server.url())}
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
        token = id_token(google_key)
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
