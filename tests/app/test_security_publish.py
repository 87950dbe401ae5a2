"""Publishing is denied by default: attacks on ``POST /push`` from outside.

The app runs under gunicorn with the Cloud Tasks emulator and soketi; the victim is a
websocket subscriber on the channel attacked. After each refused attack a proven publisher
(the tests' token) sends a sentinel event on the same channel: once the sentinel arrives,
anything the attack had queued would have arrived before it. The finer points (which
credentials prove nothing, OIDC publishers, the demo's rule, log lines) run through WebTest
on the app as ``main.py`` composes it, where the queue and the logs can be read.
"""

from __future__ import annotations

import collections
import json
from urllib.parse import quote

import httpx
import pytest

from access.rate_limit import RateLimiter
from pusherlib import Pusher, PusherValueError
from tests.app.test_oidc import ACCOUNT, AUDIENCE, id_token
from tests.support.app_under_attack import app_under_attack
from tests.support.appserver import running_stack
from tests.support.credentials import PUBLISHER_TOKEN
from tests.support.fault_server import FaultServer, Reply
from tests.support.figures import write_figures
from tests.support.google_keys import GoogleKeysServer, SigningKey

MASTER_KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="  # the conftest client's
RESULTS: collections.Counter[str] = collections.Counter()  # what was tried, for RELIABILITY.md


@pytest.fixture(scope="module", autouse=True)
def figures():
    """What this module tried, written for RELIABILITY.md's attack table."""
    yield
    write_figures("security_publish", {"attacks": dict(RESULTS), "tried": sum(RESULTS.values())})


@pytest.fixture(scope="module")
def stack(soketi):
    env = {"PUSHER_URL": soketi.url, "PUSHER_ENCRYPTION_MASTER_KEY_BASE64": MASTER_KEY}
    with running_stack(env) as running:
        yield running


@pytest.fixture
def anonymous(stack):
    with httpx.Client(base_url=stack.app.url, timeout=10) as client:
        yield client


def join(subscriber, pusher: Pusher, channel: str) -> None:
    """Subscribe the victim as a legitimate user would (signed in for a user channel)."""
    if channel.startswith("#server-to-user-"):
        user = channel.removeprefix("#server-to-user-")
        assert subscriber.signin(pusher.authenticate_user(subscriber.socket_id, {"id": user}))["event"] == (
            "pusher:signin_success"
        )
        return
    auth = None
    if channel.startswith(("private-", "presence-")):
        member = {"user_id": "victim"} if channel.startswith("presence-") else None
        auth = pusher.authenticate(channel, subscriber.socket_id, member)
    reply = subscriber.subscribe(channel, auth)
    assert reply["event"] == "pusher_internal:subscription_succeeded", reply


def push_path(channel: str, event: str) -> str:
    return f"/push/{quote(channel, safe='')}/{quote(event, safe='')}"


def assert_only_the_sentinel_arrives(stack, subscriber, channel: str, refused_event: str) -> None:
    """Publish a sentinel as a proven caller; once it arrives, nothing refused came before."""
    assert stack.app.client.post(push_path(channel, "sentinel"), json={"n": 1}).status_code == 202
    subscriber.event("sentinel", None if channel.startswith("#") else channel, timeout=30)
    arrived = [m.get("event") for m in subscriber.events]
    assert refused_event not in arrived, arrived


PROTOCOL_EVENTS = [
    "pusher_internal:member_added",
    "pusher_internal:member_removed",
    "pusher:subscription_succeeded",
]
VICTIM_CHANNELS = [
    "private-orders.victim",
    "presence-room.victim",
    "private-encrypted-victim",
    "#server-to-user-victim",
    "public-news",
]


@pytest.mark.emulator
@pytest.mark.parametrize("channel", VICTIM_CHANNELS)
def test_an_anonymous_publish_is_refused_and_never_arrives(stack, anonymous, subscriber, pusher, channel):
    join(subscriber, pusher, channel)
    response = anonymous.post(push_path(channel, "forged"), json={"forged": True})
    RESULTS[f"anonymous publish on {channel}: {response.status_code}"] += 1
    assert response.status_code == 403, response.text
    assert "anonymous caller" in response.json()["error"]
    assert_only_the_sentinel_arrives(stack, subscriber, channel, "forged")


@pytest.mark.emulator
@pytest.mark.parametrize(
    "event",
    ["pusher_internal:member_added", "pusher_internal:member_removed", "pusher:subscription_succeeded"],
)
def test_protocol_event_names_are_refused_even_to_a_proven_publisher(
    stack, anonymous, subscriber, pusher, event
):
    channel = "presence-lobby-reserved"
    join(subscriber, pusher, channel)
    for client in (stack.app.client, anonymous):
        response = client.post(push_path(channel, event), json={"user_id": "ceo", "user_info": {}})
        RESULTS[f"publish {event.split(':')[0]}: event name: {response.status_code}"] += 1
        assert response.status_code == 400, response.text
        assert "reserved" in response.json()["error"]
    assert_only_the_sentinel_arrives(stack, subscriber, channel, event)


@pytest.mark.emulator
def test_a_proven_publisher_still_publishes_everywhere(stack, subscriber, pusher):
    """The sentinel path itself, on every kind of channel (what the attacks compare with)."""
    for channel in ("private-orders.seen", "private-encrypted-seen"):
        join(subscriber, pusher, channel)
        assert stack.app.client.post(push_path(channel, "hello"), json={"n": 1}).status_code == 202
        assert subscriber.event("hello", channel, timeout=30)


# -- credentials that prove nothing -----------------------------------------------------------

FORGED_CREDENTIALS = {
    "wrong token": f"Bearer {'x' * len(PUBLISHER_TOKEN)}",
    "token prefix": f"Bearer {PUBLISHER_TOKEN[:-1]}",
    "token plus one": f"Bearer {PUBLISHER_TOKEN}x",
    "token as Basic": f"Basic {PUBLISHER_TOKEN}",
    "scheme only": "Bearer",
    "non-ASCII token": "Bearer tests-publisher-token-0123456789abcdeé",
    "JWT-looking garbage": "Bearer a.b.c",
}


@pytest.mark.parametrize("forgery", FORGED_CREDENTIALS)
def test_credentials_that_prove_nothing_get_401_and_queue_nothing(forgery):
    with app_under_attack() as target:
        headers = {"Authorization": FORGED_CREDENTIALS[forgery]}
        response = target.app.post("/push/ch/ev", "{}", headers=headers, expect_errors=True)
        RESULTS[f"publish with {forgery}: {response.status_int}"] += 1
        assert response.status_int == 401, response.body
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert target.queued() == 0
        credential = FORGED_CREDENTIALS[forgery].partition(" ")[2]
        assert not credential or credential not in target.logs()


def test_a_refusal_is_one_log_line_saying_why():
    with app_under_attack() as target:
        target.app.post("/push/private-x/ev", "{}", expect_errors=True)
        [line] = [json.loads(x) for x in target.logs().splitlines() if '"publish refused"' in x]
        assert line["severity"] == "WARNING"
        assert (line["status"], line["channel"], line["event"], line["caller"]) == (
            403,
            "private-x",
            "ev",
            None,
        )
        assert "anonymous caller" in line["reason"]


def test_the_body_of_a_refused_publish_is_not_read():
    with app_under_attack() as target:
        response = target.app.post("/push/ch/ev", b"{" * 5_000_000, expect_errors=True)
        assert response.status_int == 403  # not 413: refused before the body was looked at


# -- OIDC publishers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return SigningKey.generate("push-key")


@pytest.fixture(scope="module")
def oidc_target(google_key):
    with GoogleKeysServer([google_key]) as certs:
        env = {
            "PUSH_OIDC_AUDIENCE": AUDIENCE,
            "PUSH_OIDC_SERVICE_ACCOUNTS": f"other@p.iam.gserviceaccount.com,{ACCOUNT}",
            "TASKS_OIDC_CERTS_URL": certs.url(),
        }
        with app_under_attack(**env) as target:
            yield target


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, 202),
        ({"email": "someone@elsewhere.iam.gserviceaccount.com"}, 403),
        ({"email_verified": False}, 403),
        ({"aud": "https://another.example.com"}, 401),
        ({"iss": "https://evil.example.com"}, 401),
        ({"exp": 1_000_000}, 401),
    ],
)
def test_an_oidc_token_proves_only_a_named_service_account(oidc_target, google_key, changes, status):
    oidc_target.purge()
    headers = {"Authorization": f"Bearer {id_token(google_key, **changes)}"}
    response = oidc_target.app.post("/push/ch/ev", "{}", headers=headers, expect_errors=True)
    RESULTS[f"publish with an OIDC token ({', '.join(changes) or 'valid'}): {response.status_int}"] += 1
    assert response.status_int == status, response.body
    assert oidc_target.queued() == (1 if status == 202 else 0)


def test_an_impostor_key_proves_nothing(oidc_target):
    impostor = SigningKey.generate("push-key")
    response = oidc_target.app.post(
        "/push/ch/ev", "{}", headers={"Authorization": f"Bearer {id_token(impostor)}"}, expect_errors=True
    )
    assert response.status_int == 401


# -- the demo's rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("demo_mode", "cookie", "path", "status"),
    [
        ("1", "alice", "/push/presence-lobby/message", 202),
        ("1", None, "/push/presence-lobby/message", 403),
        ("1", "alice", "/push/presence-lobby/other", 403),
        ("1", "alice", "/push/private-secrets/message", 403),
        ("0", "alice", "/push/presence-lobby/message", 403),
    ],
)
def test_the_demo_rule_exists_only_in_demo_mode_and_only_for_the_lobby(demo_mode, cookie, path, status):
    with app_under_attack(DEMO_MODE=demo_mode) as target:
        if cookie:
            target.app.set_cookie("user", cookie)
        response = target.app.post(
            path, '{"text": "hi"}', content_type="application/json", expect_errors=True
        )
        RESULTS[f"cookie publish, DEMO_MODE={demo_mode}, {path}: {response.status_int}"] += 1
        assert response.status_int == status, response.body
        assert target.queued() == (1 if status == 202 else 0)


def test_a_proven_caller_still_publishes_on_the_demo_lobby():
    with app_under_attack(DEMO_MODE="1") as target:
        assert target.post("/push/presence-lobby/announcement", b"{}", "application/json").status_int == 202


# -- one caller flooding the quota ------------------------------------------------------------


@pytest.mark.emulator
def test_one_flooding_caller_gets_429_and_others_still_publish(soketi):
    other_token = "another-publisher-token-0123456789"
    env = {
        "PUSHER_URL": soketi.url,
        "PUSH_TOKENS": f"flooder:{PUBLISHER_TOKEN},other:{other_token}",
        "PUSH_RATE_LIMIT": "1",
        "PUSH_RATE_BURST": "3",
    }
    with running_stack(env, name="app-rate-limit") as stack:
        client = stack.app.client
        statuses = [client.post("/push/ch/ev", json={"i": i}).status_code for i in range(20)]
        refused = client.post("/push/ch/ev", json={"i": 20})
        other = client.post("/push/ch/ev", json={}, headers={"Authorization": f"Bearer {other_token}"})
    RESULTS[f"20 publishes from one caller at 1/s, burst 3: {statuses.count(429)} refused"] += 1
    assert statuses[:3] == [202, 202, 202] and 429 in statuses  # the burst is queued, then 429
    assert set(statuses) <= {202, 429}
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "too many events" in refused.json()["error"]
    assert other.status_code == 202, other.text  # the other caller's events are still queued


def test_the_limit_keeps_a_bounded_number_of_callers():
    now = [0.0]
    limiter = RateLimiter(rate=1, burst=2, capacity=100, clock=lambda: now[0])
    for caller in range(1000):
        assert limiter.wait(f"caller-{caller}") is None
    assert len(limiter) == 100
    assert [limiter.wait("flooder") for _ in range(3)] == [None, None, 1]
    now[0] += 1.0
    assert limiter.wait("flooder") is None  # one token a second comes back


def test_no_limit_when_the_rate_is_zero():
    limiter = RateLimiter(rate=0, burst=1)
    assert all(limiter.wait("caller") is None for _ in range(100)) and len(limiter) == 0


# -- pusherlib refuses protocol event names before any I/O ------------------------------------


@pytest.mark.parametrize("event", ["pusher:ping", "pusher_internal:member_added"])
def test_pusherlib_refuses_protocol_event_names_before_any_request(event):
    with FaultServer(default=Reply.json(200, {})) as server:
        client = Pusher("1", "key", "secret", host="127.0.0.1", port=server.port, ssl=False)
        with pytest.raises(PusherValueError, match="reserved"):
            client.trigger("ch", event, {})
        with pytest.raises(PusherValueError, match="reserved"):
            client.trigger_batch([{"channel": "ch", "name": event, "data": "{}"}])
        assert server.request_count == 0
    with app_under_attack() as target:
        with pytest.raises(PusherValueError, match="reserved"):
            target.app.app.services.events.enqueue_event("ch", event, {})
        assert target.queued() == 0
