"""The admin pages need proof: attacks on ``/admin/parked``, its replays and ``/tasks/recent``.

Off App Engine nothing strips ``X-AppEngine-User-Is-Admin``, so it proves nothing there;
an Identity-Aware Proxy assertion does. IAP's side is played here: P-256 keys made by the
test, published as IAP publishes them (:mod:`tests.support.google_keys`; the app reads the
``{kid: PEM}`` map at ``IAP_KEYS_URL``), assertions signed with google-auth as IAP signs
them. The app runs under app.yaml's entrypoint without the local-development switch, as on
Cloud Run.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.app_under_attack import app_under_attack
from tests.support.appserver import running_app
from tests.support.figures import write_figures
from tests.support.google_keys import IAP_KEYS, GoogleKeysServer, IapKey, SigningKey, hs256_forgery
from tests.support.processes import free_port

IAP_AUDIENCE = "/projects/123456789/apps/test-project"
ADMIN_HEADER = {"X-AppEngine-User-Is-Admin": "1"}
ADMIN_PAGES = [
    ("GET", "/admin/parked"),
    ("POST", "/admin/parked/replay"),
    ("POST", "/admin/parked/some-task/replay"),
    ("GET", "/tasks/recent"),
]
RESULTS: collections.Counter[str] = collections.Counter()


def assertion(key: IapKey, **changes: object) -> str:
    """An assertion as IAP sends it for an admin; ``changes`` replace claims."""
    return key.sign(assertion_claims(**changes))


def assertion_claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "aud": IAP_AUDIENCE,
        "iss": "https://cloud.google.com/iap",
        "sub": "accounts.google.com:1234",
        "email": "ops@example.com",
        "iat": now,
        "exp": now + 600,
        **changes,
    }


def unsigned(kid: str) -> str:
    """``alg: none``, no signature, as a forger would write it."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"aud": IAP_AUDIENCE, "iss": "https://cloud.google.com/iap", "iat": now, "exp": now + 600}
    return f"{part({'alg': 'none', 'kid': kid})}.{part(claims)}."


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    write_figures("security_admin", {"attacks": dict(RESULTS), "tried": sum(RESULTS.values())})


@pytest.fixture(scope="module")
def iap_key() -> IapKey:
    return IapKey.generate("iap-key-1")


@pytest.fixture(scope="module")
def keys_server(iap_key):
    with GoogleKeysServer(iap_keys=[iap_key, IapKey.generate("iap-key-2")]) as server:
        yield server


def cloud_run_env(keys_server: GoogleKeysServer, datastore) -> dict[str, str]:
    """The app as on Cloud Run: IAP configured, no local-development switch (parked events
    in Datastore, as deployed)."""
    return {
        **datastore.app_env(),
        "PUSHER_URL": "http://key:secret@127.0.0.1:1/apps/1",
        "IAP_AUDIENCE": IAP_AUDIENCE,
        "IAP_KEYS_URL": keys_server.url(IAP_KEYS),
        "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "0",
        "K_SERVICE": "pusher-worker",
    }


@pytest.fixture(scope="module")
def app(keys_server, datastore):
    with running_app(cloud_run_env(keys_server, datastore), name="app-iap") as server:
        yield server


def request(app, method: str, path: str, headers: dict[str, str]):
    return app.client.request(method, path, headers=headers)


@pytest.mark.parametrize(("method", "path"), ADMIN_PAGES)
def test_a_forged_app_engine_admin_header_is_refused_off_app_engine(app, method, path):
    response = request(app, method, path, ADMIN_HEADER)
    RESULTS[f"forged admin header on Cloud Run: {response.status_code}"] += 1
    assert response.status_code == 403, response.text
    assert "proves nothing off App Engine" in response.json()["error"]
    assert set(response.json()) == {"error"}


def test_a_valid_iap_assertion_proves_an_admin(app, iap_key):
    response = request(app, "GET", "/tasks/recent", {"x-goog-iap-jwt-assertion": assertion(iap_key)})
    assert response.status_code == 200 and response.json() == {"tasks": []}


NOT_IAP = re.escape("the IAP assertion was not issued by IAP")
NOT_ES256 = re.escape("the IAP assertion must be signed with ES256")
MALFORMED = re.escape("malformed IAP assertion")


def forgeries(iap_key: IapKey) -> dict[str, tuple[str, str]]:
    """Each forgery and the refusal it gets (a regular expression of the whole message)."""
    impostor = IapKey.generate(iap_key.kid)  # claims the published key id, signs with its own key
    rsa_key = SigningKey.generate(iap_key.kid)  # IAP signs ES256: RS256 is not its algorithm
    now = int(time.time())
    return {
        "wrong audience": (
            assertion(iap_key, aud="/projects/1/apps/another-project"),
            re.escape("the IAP assertion is for another audience"),
        ),
        "wrong issuer": (assertion(iap_key, iss="https://accounts.google.com"), NOT_IAP),
        "issuer with IAP's host as a prefix": (
            assertion(iap_key, iss="https://cloud.google.com.evil.example"),
            NOT_IAP,
        ),
        "issuer with IAP's issuer in a path": (
            assertion(iap_key, iss="https://evil.example/cloud.google.com/iap"),
            NOT_IAP,
        ),
        "issuer with IAP's issuer as a prefix": (
            assertion(iap_key, iss="https://cloud.google.com/iap.evil"),
            NOT_IAP,
        ),
        "expired": (assertion(iap_key, iat=now - 7200, exp=now - 3600), r"Token expired, \d+ < \d+"),
        "issued in the future": (
            assertion(iap_key, iat=now + 3600, exp=now + 7200),
            r"Token used too early, \d+ < \d+\. Check that your computer's clock is set correctly\.",
        ),
        "impostor key, same kid": (assertion(impostor), re.escape("Could not verify token signature.")),
        "unknown kid": (
            assertion(IapKey.generate("not-published")),
            re.escape("the IAP assertion's signing key is not one of IAP's"),
        ),
        "alg none": (unsigned(iap_key.kid), NOT_ES256),
        "HS256, IAP's public key as the secret": (
            hs256_forgery(assertion_claims(), iap_key.kid, iap_key.pem),
            NOT_ES256,
        ),
        "RS256, the published key id": (rsa_key.sign(assertion_claims()), NOT_ES256),
        "garbage": ("a.b.c", MALFORMED),
        "long garbage": ("a" * 8000 + ".b.c", MALFORMED),  # gunicorn refuses longer headers itself
    }


FORGERIES = list(forgeries(IapKey.generate("k")))


@pytest.mark.parametrize("forgery", FORGERIES)
def test_iap_forgeries_are_refused(app, iap_key, forgery):
    token, refusal = forgeries(iap_key)[forgery]
    response = request(app, "GET", "/tasks/recent", {"x-goog-iap-jwt-assertion": token, **ADMIN_HEADER})
    RESULTS[f"IAP assertion ({forgery}): {response.status_code}"] += 1
    assert response.status_code == 403, response.text
    assert "tasks" not in response.json()
    assert re.fullmatch(refusal, response.json()["error"]), response.json()


def test_the_admin_header_counts_on_app_engine_only(datastore):
    deployed = {"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "0", **datastore.app_env()}  # parked events in Datastore
    with app_under_attack(GAE_ENV="standard", **deployed) as target:
        response = target.app.get("/tasks/recent", headers=ADMIN_HEADER, expect_errors=True)
        assert response.status_int == 200 and "tasks" in response.json
    with app_under_attack(**deployed) as target:
        assert target.app.get("/tasks/recent", headers=ADMIN_HEADER, expect_errors=True).status_int == 403


def test_iap_keys_that_cannot_be_fetched_give_503(datastore):
    env = {"IAP_AUDIENCE": IAP_AUDIENCE, "IAP_KEYS_URL": f"http://127.0.0.1:{free_port()}{IAP_KEYS}"}
    with app_under_attack(ALLOW_UNVERIFIED_LOCAL_REQUESTS="0", **env, **datastore.app_env()) as target:
        headers = {"x-goog-iap-jwt-assertion": assertion(IapKey.generate("k"))}
        assert target.app.get("/tasks/recent", headers=headers, expect_errors=True).status_int == 503


def test_iap_keys_that_cannot_be_fetched_are_fetched_once_for_8_admins_at_once(iap_key, datastore):
    """Through the entrypoint: 8 admins at once while IAP's keys answer 503 make one fetch
    and get 503 each (the others wait for that fetch, then the backoff holds)."""
    with (
        GoogleKeysServer(iap_keys=[iap_key], status=503) as keys_server,
        running_app(cloud_run_env(keys_server, datastore), name="app-iap-down") as down,
    ):
        url, headers = f"{down.url}/tasks/recent", {"x-goog-iap-jwt-assertion": assertion(iap_key)}
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: httpx.get(url, headers=headers, timeout=30), range(8)))
        RESULTS[f"8 admins at once, IAP's keys down: {keys_server.fetches} fetch"] += 1
        assert [answer.status_code for answer in answers] == [503] * 8
        assert {answer.json()["error"] for answer in answers} == {"IAP's keys cannot be fetched now"}
        assert keys_server.fetches == 1


# -- numbers are ASCII digits -------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["²", "٣", "\uff11", " 5", "+5", "1_0", "5.0", "99999999999999999999999"])
@pytest.mark.parametrize("path", ["/tasks/recent", "/admin/parked"])
def test_a_limit_that_is_not_ascii_digits_gets_400(app, iap_key, path, limit):
    headers = {"x-goog-iap-jwt-assertion": assertion(iap_key)}
    response = app.client.get(path, params={"limit": limit}, headers=headers)
    RESULTS[f"?limit={limit!r}: {response.status_code}"] += 1
    assert response.status_code == 400, response.text
    assert "ASCII digits" in response.json()["error"]
