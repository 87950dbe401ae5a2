"""Forged webhooks, as an attacker would send them to every webhook route: all refused
(401), no handler called. The checks compare in constant time (``hmac.compare_digest``),
and no secret-bearing value in the auth code is compared with ``==``.

Figures: ``test-output/reliability/security_webhooks.json``.
"""

from __future__ import annotations

import ast
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable

import pytest

import pusherlib.webhooks
from pusherlib.endpoints import WEBHOOK_EVENTS
from pusherlib.signing import webhook_signature
from tests.support.endpoints import KEY, SECRET, offline_endpoints, webtest_app
from tests.support.figures import write_figures
from tests.support.processes import ROOT
from tests.support.soketi import unique

ROUTES = [
    "/pusher/webhooks",
    "/pusher/events/channel_existence",
    "/pusher/events/presence",
    "/pusher/events/client",
]
RESULTS: Counter[str] = Counter()

Forgery = Callable[[], tuple[bytes, dict[str, str]]]


def body(time_ms: float | None = None, channel: str = "private-a") -> bytes:
    stamp = time.time() * 1000 if time_ms is None else time_ms
    return json.dumps(
        {"time_ms": int(stamp), "events": [{"name": "channel_occupied", "channel": channel}]}
    ).encode()


def signed(data: bytes, secret: str = SECRET, key: str = KEY) -> tuple[bytes, dict[str, str]]:
    return data, {"X-Pusher-Key": key, "X-Pusher-Signature": webhook_signature(secret.encode(), data)}


def altered(change: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]) -> Forgery:
    """A genuine webhook, then ``change`` applied to its body and headers."""
    return lambda: change(*signed(body()))


def without(header: str) -> Forgery:
    return altered(lambda data, headers: (data, {k: v for k, v in headers.items() if k != header}))


FORGERIES: dict[str, Forgery] = {
    "made-up signature": altered(lambda data, h: (data, {**h, "X-Pusher-Signature": "0" * 64})),
    "signed with another secret": lambda: signed(body(), secret="not-the-secret"),
    "signed with the key as secret": lambda: signed(body(), secret=KEY),
    "signature of the empty body": altered(lambda data, h: (data, signed(b"")[1])),
    "wrong key, right signature": lambda: signed(body(), key="another-app-key"),
    "stale body (10 min old), right signature": lambda: signed(body(time.time() * 1000 - 600_000)),
    "from the future (10 min), right signature": lambda: signed(body(time.time() * 1000 + 600_000)),
    "body changed after signing": altered(lambda data, h: (data.replace(b"private-a", b"private-b"), h)),
    "space appended after signing": altered(lambda data, h: (data + b" ", h)),
    "signature truncated": altered(
        lambda data, h: (data, {**h, "X-Pusher-Signature": h["X-Pusher-Signature"][:32]})
    ),
    "no signature header": without("X-Pusher-Signature"),
    "no key header": without("X-Pusher-Key"),
    "no headers": altered(lambda data, h: (data, {})),
}


@pytest.fixture(scope="module")
def endpoints():
    return offline_endpoints()


@pytest.fixture(scope="module")
def handled(endpoints):
    """How many events reached a handler."""
    calls: Counter[str] = Counter()
    for name in WEBHOOK_EVENTS:
        endpoints.on(name)(lambda event, request, name=name: calls.update([name]))
    yield calls
    write_figures("security_webhooks", {"attacks": dict(RESULTS), "tried": sum(RESULTS.values())})


@pytest.fixture(scope="module")
def app(endpoints):
    return webtest_app(endpoints)


def post(app, route: str, data: bytes, headers: dict[str, str]):
    return app.post(route, data, headers=headers, content_type="application/json", expect_errors=True)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_webhooks_are_refused_and_reach_no_handler(app, handled, route, forgery):
    before = sum(handled.values())
    data, headers = FORGERIES[forgery]()
    response = post(app, route, data, headers)
    RESULTS[f"{forgery}: {response.status_int}"] += 1
    assert response.status_int == 401, response.body
    assert "error" in response.json
    assert sum(handled.values()) == before


@pytest.mark.parametrize("route", ROUTES)
def test_a_replayed_genuine_webhook_is_refused(app, handled, route):
    # A webhook of its own: the same body is the same webhook on every route.
    data, headers = signed(body(channel=unique("private-")))
    before = sum(handled.values())
    assert post(app, route, data, headers).status_int == 200
    response = post(app, route, data, headers)
    RESULTS[f"replayed genuine webhook: {response.status_int}"] += 1
    assert response.status_int == 401
    assert sum(handled.values()) == before + 1


def test_both_headers_are_compared_with_compare_digest(monkeypatch):
    """A forged webhook goes through ``hmac.compare_digest`` for its key and its signature."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(pusherlib.webhooks.hmac, "compare_digest", spy)
    data, headers = signed(body(), secret="forger")
    with pytest.raises(pusherlib.webhooks.WebhookRejected):
        pusherlib.webhooks.check_webhook(
            app_key=KEY,
            secret=SECRET.encode(),
            key=headers["X-Pusher-Key"],
            signature=headers["X-Pusher-Signature"],
            body=data,
        )
    assert (KEY.encode(), KEY.encode()) in compared
    assert (
        headers["X-Pusher-Signature"].encode(),
        webhook_signature(SECRET.encode(), data).encode(),
    ) in compared


SENSITIVE = ("signature", "digest", "secret", "token", "auth")
CHECKED_SOURCES = [
    "pusherlib/webhooks.py",
    "pusherlib/auth.py",
    "pusherlib/signing.py",
    "access/oidc.py",
    "access/iap.py",
    "access/publishers.py",
    *sorted(
        str(p.relative_to(ROOT))
        for folder in ("handlers/pusher_auth", "pusherlib/endpoints", "pusherlib/integrations")
        for p in (ROOT / folder).rglob("*.py")
    ),
]


def _names(node: ast.AST) -> set[str]:
    return {n.id.lower() for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr.lower() for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


@pytest.mark.parametrize("source", CHECKED_SOURCES)
def test_no_secret_is_compared_with_equals(source):
    """``==`` on a signature or token leaks, through timing, how much of it was right."""
    path = ROOT / source
    assert path.exists(), f"{source} was moved: check it where it is now"
    offending = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            names = _names(node)
            if any(word in name for name in names for word in SENSITIVE):
                offending.append(f"{source}:{node.lineno}: {ast.unparse(node)}")
    assert offending == []
