"""No secret in any answer, log line or error message: the Pusher secret and the
encryption master key are made unique to the run, every endpoint is driven through its
successes and its failures (Pusher answering 401, 403, 400, 413, 500, 429, slowly, or
resetting), and every response body, header and log line is searched for them.

Figures: ``test-output/reliability/security_secrets.json``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid

import pytest

from settings import ConfigError, Settings
from tests.support.app_under_attack import ADMIN, QUEUE_HEADERS, app_under_attack
from tests.support.fault_proxy import Fault
from tests.support.fault_server import FaultServer, Reply, Reset
from tests.support.figures import write_figures
from tests.support.reliability import CHANNEL, EVENT, EventStream, reliability_stack, settle

SECRET = f"s3cret-{uuid.uuid4().hex}"
MASTER_KEY_BYTES = os.urandom(32)
MASTER_KEY = base64.b64encode(MASTER_KEY_BYTES).decode()
NEEDLES = [SECRET, MASTER_KEY, MASTER_KEY_BYTES.hex(), base64.urlsafe_b64encode(MASTER_KEY_BYTES).decode()]
PUSHER_ANSWERS = [
    Reply.json(401, {"error": "Invalid signature"}),
    Reply.json(403, {"error": "over quota"}),
    Reply.json(400, {"error": "bad"}),
    Reply.json(413, {"error": "too large"}),
    Reply.json(500, {"error": "boom"}),
    Reply.json(429, {"error": "slow down"}),
    Reply(200, b"{}", delay=1.5),
    Reset(),
    Reply.json(200, {"error": "The secret authentication failed", "code": 401}),
]


def leaks(text: str) -> list[str]:
    return [needle[:12] + "..." for needle in NEEDLES if needle in text]


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def requests_of_every_kind() -> list[tuple[str, str, bytes, str, dict[str, str]]]:
    """(what, path, body, content type, headers): successes and failures of each endpoint."""
    webhook = json.dumps(
        {"time_ms": int(time.time() * 1000), "events": [{"name": "channel_occupied"}]}
    ).encode()
    form = "application/x-www-form-urlencoded"
    worker = [
        (
            f"worker, Pusher answers {i}",
            f"/worker/push/ch/ev{i}",
            b'{"n": 1}',
            "application/json",
            QUEUE_HEADERS,
        )
        for i in range(len(PUSHER_ANSWERS))
    ]
    return [
        *worker,
        (
            "worker batch",
            "/worker/batch",
            b'[{"channel": "c", "name": "e", "data": "x"}]',
            "application/json",
            QUEUE_HEADERS,
        ),
        ("worker, outside", "/worker/push/ch/ev", b"{}", "application/json", {}),
        ("push", "/push/ch/ev", b'{"n": 1}', "application/json", {}),
        ("push, bad channel", "/push/bad%20channel/ev", b"{}", "application/json", {}),
        ("push, too big", "/push/ch/ev", b'"' + b"a" * 70_000 + b'"', "application/json", {}),
        ("push, encrypted", "/push/private-encrypted-x/ev", b'{"n": 1}', "application/json", {}),
        (
            "auth, private",
            "/pusher/auth",
            b"socket_id=1.1&channel_name=private-x",
            form,
            {"Cookie": "user=al"},
        ),
        (
            "auth, encrypted",
            "/pusher/auth",
            b"socket_id=1.1&channel_name=private-encrypted-x",
            form,
            {"Cookie": "user=al"},
        ),
        (
            "auth, presence",
            "/pusher/auth",
            b"socket_id=1.1&channel_name=presence-x",
            form,
            {"Cookie": "user=al"},
        ),
        ("auth, refused", "/pusher/auth", b"socket_id=1.1&channel_name=private-x", form, {}),
        ("auth, bad", "/pusher/auth", b"socket_id=x&channel_name=private-x", form, {}),
        ("user auth", "/pusher/user-auth", b"socket_id=1.1", form, {"Cookie": "user=al"}),
        (
            "webhook, genuine",
            "/pusher/webhooks",
            webhook,
            "application/json",
            {"X-Pusher-Key": "key", "X-Pusher-Signature": sign(webhook)},
        ),
        (
            "webhook, forged",
            "/pusher/webhooks",
            webhook,
            "application/json",
            {"X-Pusher-Key": "key", "X-Pusher-Signature": sign(webhook, "guess")},
        ),
        ("not found", "/nowhere", b"", "text/plain", {}),
    ]


def test_no_secret_in_answers_or_logs_of_any_endpoint():
    answers = 0
    with (
        FaultServer(PUSHER_ANSWERS) as pusher,
        app_under_attack(
            f"http://key:{SECRET}@127.0.0.1:{pusher.port}/apps/1",
            DEMO_MODE="1",
            PUSHER_ENCRYPTION_MASTER_KEY_BASE64=MASTER_KEY,
            PUSHER_TIMEOUT="0.5",
        ) as target,
    ):
        seen = []
        for what, path, body, content_type, headers in requests_of_every_kind():
            response = target.post(path, body, content_type, headers)
            seen.append(f"{what}: {response.status} {response.headers} {response.body.decode('latin-1')}")
            answers += 1
        for page in ("/admin/parked", "/tasks/recent"):
            response = target.app.get(page, headers=ADMIN, expect_errors=True)
            seen.append(f"{page}: {response.status} {response.body.decode('latin-1')}")
            answers += 1
        logged = target.logs()
    assert "pusher task parked" in logged and "pusher task retried" in logged  # the failures were logged
    assert leaks("\n".join(seen)) == []
    assert leaks(logged) == []
    write_figures(
        "security_secrets",
        {"answers_searched": answers, "log_lines_searched": logged.count("\n"), "secrets_found": 0},
    )


@pytest.mark.parametrize(
    "url",
    [
        f"http://key:{SECRET}@host:99999999/apps/1",
        f"http://key:{SECRET}@host/apps/not%20an%20id",  # app ids may be names, not with spaces
        f"ftp://key:{SECRET}@host/apps/1",
        f"http://key:{SECRET}@host/app/1",
        f"http://key:{SECRET}@/apps/1",
    ],
)
def test_configuration_errors_do_not_repeat_the_secret(url):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"PUSHER_URL": url, "GOOGLE_CLOUD_PROJECT": "p"})
    assert leaks(str(refused.value)) == []


def test_settings_do_not_show_their_secrets():
    settings = Settings.from_env(
        {
            "PUSHER_URL": f"https://key:{SECRET}@api.pusherapp.com/apps/1",
            "PUSHER_ENCRYPTION_MASTER_KEY_BASE64": MASTER_KEY,
            "GOOGLE_CLOUD_PROJECT": "p",
        }
    )
    assert leaks(repr(settings)) == [] and leaks(repr(settings.pusher_client())) == []


@pytest.mark.emulator
def test_no_secret_in_the_logs_of_the_running_app():
    """The app under gunicorn, its tasks and outcomes, with Pusher refusing the credentials
    (401), failing (500), resetting, then accepting: its log file holds no secret."""
    with reliability_stack("secrets", {"PUSHER_MAX_ATTEMPTS": "3"}, secret=SECRET) as stack:
        stack.proxy.arm(Fault.answer(401), 3)
        stack.proxy.arm(Fault.answer(500), 3)
        stack.proxy.arm(Fault.reset(), 3)
        stream = EventStream(stack.app, "secret")
        stream.post(12)
        stack.app.client.post(f"/worker/push/{CHANNEL}/{EVENT}", json={"id": "outside"})
        stack.app.client.post("/pusher/auth", data={"socket_id": "1.1", "channel_name": "private-x"})
        settle(stack, stream.accepted)
        log = stack.app.log_path.read_text(errors="replace")
    assert "pusher task delivered" in log and "pusher task retried" in log
    assert leaks(log) == []
