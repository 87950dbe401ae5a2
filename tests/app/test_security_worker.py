"""Outside requests to the worker: refused (403) without the queue's headers, and with
``TASKS_OIDC_AUDIENCE`` set, refused (401) without a token Google signed, whatever
headers they forge. Nothing is triggered, queued or parked for them. The operator's
pages (parked tasks, replays, the task log) refuse anyone App Engine did not sign in as
an admin.

The full matrix of forged OIDC tokens (wrong audience, issuer, key, expiry, account...)
is ``tests/app/test_oidc.py``; here are the headers-only forgeries and unsigned tokens.
Figures: ``test-output/reliability/security_worker.json``.
"""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest

from tests.support.app_under_attack import QUEUE_HEADERS, app_under_attack
from tests.support.fault_server import FaultServer, Reply
from tests.support.figures import write_figures

RESULTS: Counter[str] = Counter()
PATHS = ["/worker/push/ch/ev", "/worker/batch", "/worker/anything"]
FORGED_HEADERS = {
    "no headers": {},
    "empty queue name": {"X-AppEngine-QueueName": ""},
    "task name only": {"X-AppEngine-TaskName": "t1", "X-AppEngine-TaskRetryCount": "0"},
    "misspelt header": {"X-AppEngine-Queue": "pusher"},
    "forwarded-for": {"X-Forwarded-For": "0.1.0.2", "X-Cloud-Trace-Context": "x"},
    "admin header": {"X-AppEngine-User-Is-Admin": "1"},
}
BATCH = json.dumps([{"channel": "ch", "name": "ev", "data": "{}"}]).encode()


@pytest.fixture(scope="module")
def target():
    with app_under_attack() as running:
        yield running
    write_figures("security_worker", {"attacks": dict(RESULTS), "tried": sum(RESULTS.values())})


def assert_nothing_happened(target, sent: int) -> None:
    assert target.pusher.request_count == sent
    assert target.queued() == 0 and target.parked() == []


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("forgery", FORGED_HEADERS)
def test_requests_without_the_queue_headers_are_refused(target, path, forgery):
    target.purge()
    sent = target.pusher.request_count
    response = target.post(path, BATCH, "application/json", FORGED_HEADERS[forgery])
    RESULTS[f"worker without queue headers ({forgery}): {response.status_int}"] += 1
    assert response.status_int == 403 and "queue" in response.json["error"]
    assert_nothing_happened(target, sent)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/parked"),
        ("POST", "/admin/parked/replay"),
        ("POST", "/admin/parked/some-task/replay"),
        ("GET", "/tasks/recent"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"X-AppEngine-User-Is-Admin": "0"}, QUEUE_HEADERS], ids=repr)
def test_the_operator_pages_refuse_non_admins(target, method, path, headers):
    response = target.app.request(path, method=method, headers=headers, expect_errors=True)
    RESULTS[f"operator page without admin: {response.status_int}"] += 1
    assert response.status_int == 403 and "parked" not in response.json and "tasks" not in response.json


def unsigned_token(**claims: object) -> str:
    """A JWT with ``alg: none`` and no signature, as a forger would write one."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    payload = {"aud": "https://worker.example.com", "iss": "https://accounts.google.com", **claims}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


TOKEN_FORGERIES = {
    "no Authorization": {},
    "X-CloudTasks headers, no token": {"X-CloudTasks-QueueName": "pusher", "X-CloudTasks-TaskName": "t1"},
    "alg none": {"Authorization": f"Bearer {unsigned_token()}"},
    "alg none, signature dropped": {"Authorization": f"Bearer {unsigned_token().rstrip('.')}"},
    "Basic credentials": {"Authorization": "Basic " + base64.b64encode(b"tasks:secret").decode()},
    "bearer garbage": {"Authorization": "Bearer a.b.c"},
    "oversized token": {"Authorization": "Bearer " + "a" * 100_000},
}


@pytest.fixture(scope="module")
def certs():
    """Google's certificate endpoint, counted: an unsigned token must not even make the app fetch."""
    with FaultServer(default=Reply.json(200, {"k1": "not a certificate"})) as server:
        yield server


@pytest.mark.parametrize("forgery", TOKEN_FORGERIES)
def test_with_an_audience_forged_tokens_are_refused(certs, forgery):
    env = {
        "TASKS_OIDC_AUDIENCE": "https://worker.example.com",
        "TASKS_OIDC_SERVICE_ACCOUNT": "tasks@test-project.iam.gserviceaccount.com",  # needed with an audience
        "TASKS_OIDC_CERTS_URL": f"http://127.0.0.1:{certs.port}/oauth2/v1/certs",
    }
    with app_under_attack(**env) as target:
        sent, fetched = target.pusher.request_count, certs.request_count
        headers = {"X-AppEngine-QueueName": "pusher", **TOKEN_FORGERIES[forgery]}
        response = target.post("/worker/push/ch/ev", b"{}", "application/json", headers)
        RESULTS[f"worker OIDC ({forgery}): {response.status_int}"] += 1
        assert response.status_int == 401, response.body
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert_nothing_happened(target, sent)
        assert certs.request_count == fetched
        assert "a" * 100 not in target.logs()
