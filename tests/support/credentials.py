"""What the tests' app accepts as proof: a publisher token for ``POST /push`` and the
local-development switch under which the admin header is believed (never on a deployment).

``TRUST_ENV`` goes into every test app's environment; ``PUBLISHER_HEADERS`` on every
request that publishes. Tests of the trust boundary itself start apps without them.
"""

from __future__ import annotations

PUBLISHER_NAME = "tests"
PUBLISHER_TOKEN = "tests-publisher-token-0123456789abcdef"  # 32+ characters, as PUSH_TOKENS needs
PUBLISHER_HEADERS = {"Authorization": f"Bearer {PUBLISHER_TOKEN}"}
PUBLISHER_ENVIRON = {"HTTP_AUTHORIZATION": PUBLISHER_HEADERS["Authorization"]}  # WebTest's extra_environ
TRUST_ENV = {
    "PUSH_TOKENS": f"{PUBLISHER_NAME}:{PUBLISHER_TOKEN}",
    "PUSH_RATE_LIMIT": "0",  # load and fuzz tests publish thousands of events; the limit has its own tests
    "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",
}


def with_publisher_token(path: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus the publisher token when ``path`` publishes (``/push/...``)."""
    token = PUBLISHER_HEADERS if path.startswith("/push/") else {}
    return {**token, **(headers or {})}
