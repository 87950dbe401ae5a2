"""The admin pages need proof: attacks on ``/admin/parked``, its replays and ``/tasks/recent``.

Off App Engine nothing strips ``X-AppEngine-User-Is-Admin``, so it proves nothing there;
an Identity-Aware Proxy assertion does. IAP's side is played here: P-256 keys made by the
test, published as a JWK set by a local server (``IAP_KEYS_URL``), assertions signed with
google-auth as IAP signs them. The app runs under gunicorn without the local-development
switch, as on Cloud Run.
"""

from __future__ import annotations

import base64
import collections
import json
import time
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt

from tests.support.app_under_attack import app_under_attack
from tests.support.appserver import running_app
from tests.support.fault_server import FaultServer, Reply
from tests.support.figures import write_figures
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


@dataclass(frozen=True)
class IapKey:
    """A P-256 key IAP could sign with, published under ``kid``."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, kid: str) -> IapKey:
        return cls(kid, ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()

        def b64(number: int) -> str:
            return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()

        return {
            "kid": self.kid,
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "x": b64(numbers.x),
            "y": b64(numbers.y),
        }

    def assertion(self, **changes: object) -> str:
        """An assertion as IAP sends it for an admin; ``changes`` replace claims."""
        now = int(time.time())
        claims = {
            "aud": IAP_AUDIENCE,
            "iss": "https://cloud.google.com/iap",
            "sub": "accounts.google.com:1234",
            "email": "ops@example.com",
            "iat": now,
            "exp": now + 600,
            **changes,
        }
        return jwt.encode(crypt.EsSigner(self.private_key, key_id=self.kid), claims).decode()


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
    published = {"keys": [iap_key.jwk(), IapKey.generate("iap-key-2").jwk(), {"kty": "RSA", "kid": "r"}]}
    with FaultServer(default=Reply.json(200, published)) as server:
        yield server


@pytest.fixture(scope="module")
def app(keys_server, datastore):
    """The app as on Cloud Run: IAP configured, no local-development switch (parked events
    in Datastore, as deployed)."""
    env = {
        **datastore.app_env(),
        "PUSHER_URL": "http://key:secret@127.0.0.1:1/apps/1",
        "IAP_AUDIENCE": IAP_AUDIENCE,
        "IAP_KEYS_URL": f"http://127.0.0.1:{keys_server.port}/iap/verify/public_key-jwk",
        "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "0",
        "K_SERVICE": "pusher-worker",
    }
    with running_app(env, name="app-iap") as server:
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
    response = request(app, "GET", "/tasks/recent", {"x-goog-iap-jwt-assertion": iap_key.assertion()})
    assert response.status_code == 200 and response.json() == {"tasks": []}


def forgeries(iap_key: IapKey) -> dict[str, str]:
    impostor = IapKey.generate(iap_key.kid)  # claims the published key id, signs with its own key
    now = int(time.time())
    return {
        "wrong audience": iap_key.assertion(aud="/projects/1/apps/another-project"),
        "wrong issuer": iap_key.assertion(iss="https://accounts.google.com"),
        "expired": iap_key.assertion(iat=now - 7200, exp=now - 3600),
        "issued in the future": iap_key.assertion(iat=now + 3600, exp=now + 7200),
        "impostor key, same kid": impostor.assertion(),
        "unknown kid": IapKey.generate("not-published").assertion(),
        "alg none": unsigned(iap_key.kid),
        "garbage": "a.b.c",
        "long garbage": "a" * 8000 + ".b.c",  # gunicorn refuses longer headers itself
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "wrong audience",
        "wrong issuer",
        "expired",
        "issued in the future",
        "impostor key, same kid",
        "unknown kid",
        "alg none",
        "garbage",
        "long garbage",
    ],
)
def test_iap_forgeries_are_refused(app, iap_key, forgery):
    headers = {"x-goog-iap-jwt-assertion": forgeries(iap_key)[forgery], **ADMIN_HEADER}
    response = request(app, "GET", "/tasks/recent", headers)
    RESULTS[f"IAP assertion ({forgery}): {response.status_code}"] += 1
    assert response.status_code == 403, response.text
    assert "tasks" not in response.json()
    assert "IAP" in response.json()["error"]


def test_the_admin_header_counts_on_app_engine_only(datastore):
    deployed = {"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "0", **datastore.app_env()}  # parked events in Datastore
    with app_under_attack(GAE_ENV="standard", **deployed) as target:
        response = target.app.get("/tasks/recent", headers=ADMIN_HEADER, expect_errors=True)
        assert response.status_int == 200 and "tasks" in response.json
    with app_under_attack(**deployed) as target:
        assert target.app.get("/tasks/recent", headers=ADMIN_HEADER, expect_errors=True).status_int == 403


def test_iap_keys_that_cannot_be_fetched_give_503(datastore):
    env = {"IAP_AUDIENCE": IAP_AUDIENCE, "IAP_KEYS_URL": f"http://127.0.0.1:{free_port()}/jwk"}
    with app_under_attack(ALLOW_UNVERIFIED_LOCAL_REQUESTS="0", **env, **datastore.app_env()) as target:
        headers = {"x-goog-iap-jwt-assertion": IapKey.generate("k").assertion()}
        assert target.app.get("/tasks/recent", headers=headers, expect_errors=True).status_int == 503


# -- numbers are ASCII digits -------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["²", "٣", "\uff11", " 5", "+5", "1_0", "5.0", "99999999999999999999999"])
@pytest.mark.parametrize("path", ["/tasks/recent", "/admin/parked"])
def test_a_limit_that_is_not_ascii_digits_gets_400(app, iap_key, path, limit):
    headers = {"x-goog-iap-jwt-assertion": iap_key.assertion()}
    response = app.client.get(path, params={"limit": limit}, headers=headers)
    RESULTS[f"?limit={limit!r}: {response.status_code}"] += 1
    assert response.status_code == 400, response.text
    assert "ASCII digits" in response.json()["error"]
