"""Webhook features of the Go, PHP and Node libraries: client events on
``private-encrypted-`` channels arrive decrypted (soketi sends a real one), webhooks signed
with an extra key/secret pair are accepted while a secret is rotated, and an already parsed
body is refused with a message saying to pass the raw one."""

from __future__ import annotations

import base64
import json
import time

import pytest

from pusherlib import Pusher, PusherTypeError, WebhookRejected, encryption
from pusherlib.signing import webhook_signature
from tests.support.fault_server import FaultServer
from tests.support.processes import wait_until
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber

MASTER_KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
CHANNEL = "private-encrypted-vault"


@pytest.fixture(scope="module")
def client_event_webhook():
    """A ``client_event`` webhook soketi sent for an encrypted client event, and the client."""
    with FaultServer() as receiver:
        server = Soketi(
            name="soketi-client-events",
            webhooks=[{"url": f"http://127.0.0.1:{receiver.port}/hook", "event_types": ["client_event"]}],
        )
        with server, Subscriber(server.ws_url) as sender:
            client = Pusher.from_url(server.url, encryption_master_key_base64=MASTER_KEY)
            answer = client.authenticate(CHANNEL, sender.socket_id)
            assert sender.subscribe(CHANNEL, answer)["event"] == "pusher_internal:subscription_succeeded"
            secret = base64.b64decode(answer["shared_secret"])
            assert secret == encryption.shared_secret(CHANNEL, base64.b64decode(MASTER_KEY))
            sealed = encryption.encrypt(CHANNEL, json.dumps({"pin": "1234"}), base64.b64decode(MASTER_KEY))
            sender.ws.send(json.dumps({"event": "client-typed", "channel": CHANNEL, "data": sealed}))
            wait_until(lambda: receiver.request_count >= 1, 15, "the client_event webhook")
        yield client, receiver.requests[0]


def test_client_events_on_encrypted_channels_arrive_decrypted(client_event_webhook):
    client, request = client_event_webhook
    webhook = client.check_webhook(
        request.headers["x-pusher-key"], request.headers["x-pusher-signature"], request.body
    )
    [event] = webhook["events"]
    assert (event["name"], event["channel"], event["event"]) == ("client_event", CHANNEL, "client-typed")
    assert json.loads(event["data"]) == {"pin": "1234"}
    assert "decryption_error" not in event


def test_without_a_master_key_the_data_stays_encrypted(client_event_webhook):
    client, request = client_event_webhook
    plain = Pusher(client.app_id, client.key, client.secret)
    webhook = plain.check_webhook(
        request.headers["x-pusher-key"], request.headers["x-pusher-signature"], request.body
    )
    assert set(json.loads(webhook["events"][0]["data"])) == {"nonce", "ciphertext"}


def signed_body(events: list[dict], secret: str) -> tuple[bytes, str]:
    body = json.dumps({"time_ms": int(time.time() * 1000), "events": events}).encode()
    return body, webhook_signature(secret.encode(), body)


def test_data_that_does_not_decrypt_is_flagged_and_the_other_events_still_arrive():
    client = Pusher("1", "key", "secret", encryption_master_key_base64=MASTER_KEY)
    good = encryption.encrypt(CHANNEL, "fine", base64.b64decode(MASTER_KEY))
    forged = json.dumps({"nonce": base64.b64encode(b"n" * 24).decode(), "ciphertext": "AAAA"})
    events = [
        {"name": "client_event", "channel": CHANNEL, "event": "client-a", "data": forged},
        {"name": "client_event", "channel": CHANNEL, "event": "client-b", "data": "not json"},
        {"name": "client_event", "channel": CHANNEL, "event": "client-c", "data": good},
        {"name": "channel_occupied", "channel": "private-encrypted-other"},
    ]
    body, signature = signed_body(events, "secret")
    first, second, third, fourth = client.check_webhook("key", signature, body)["events"]
    assert first["data"] == forged and "does not decrypt" in first["decryption_error"]
    assert "does not decrypt" in second["decryption_error"]
    assert third["data"] == "fine" and "decryption_error" not in third
    assert fourth == {"name": "channel_occupied", "channel": "private-encrypted-other"}


# -- rotation ---------------------------------------------------------------------------------


def test_extra_tokens_accept_webhooks_signed_with_the_old_secret():
    client = Pusher("1", "new-key", "new-secret", extra_webhook_tokens=[("old-key", "old-secret")])
    body, signature = signed_body([], "old-secret")
    assert client.validate_webhook("old-key", signature, body) is not None
    body, signature = signed_body([], "new-secret")
    assert client.validate_webhook("new-key", signature, body) is not None


def test_extra_tokens_per_call_like_nodes_is_valid():
    client = Pusher("1", "new-key", "new-secret")
    body, signature = signed_body([], "old-secret")
    assert client.validate_webhook("old-key", signature, body) is None
    assert client.validate_webhook("old-key", signature, body, extra_tokens=[("old-key", "old-secret")])


def test_a_signature_made_with_another_pairs_secret_is_refused():
    client = Pusher("1", "new-key", "new-secret", extra_webhook_tokens=[("old-key", "old-secret")])
    body, signature = signed_body([], "old-secret")
    with pytest.raises(WebhookRejected) as refused:
        client.check_webhook("new-key", signature, body)  # old secret under the new key
    assert refused.value.reason == "signature"
    with pytest.raises(WebhookRejected) as refused:
        client.check_webhook("stranger", signature, body)
    assert refused.value.reason == "key"


def test_bad_extra_tokens_are_refused_at_construction():
    with pytest.raises(PusherTypeError, match=r"\(key, secret\) pairs"):
        Pusher("1", "k", "s", extra_webhook_tokens=[("only-a-key",)])


# -- the raw body ---------------------------------------------------------------------------------


@pytest.mark.parametrize("parsed", [{"time_ms": 1, "events": []}, [1, 2], None, 42])
def test_a_parsed_body_is_refused_with_a_clear_message(parsed):
    client = Pusher("1", "key", "secret")
    with pytest.raises(PusherTypeError, match="raw request body"):
        client.validate_webhook("key", "signature", parsed)
