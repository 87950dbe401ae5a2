"""Property tests over every endpoint of the app as ``main.py`` composes it (WebTest).

Whatever arrives (names, bodies, encodings, content types, form fields, headers), the app
answers with a status from the endpoint's documented set, never 500, never a traceback,
a JSON ``{"error": "<message>"}`` for a refusal, and nothing half-accepted: a refused
``/push`` queues nothing, an accepted one queues one task; the worker delivers or parks
every task it is given (never a 5xx while Pusher is up). Pusher is a real soketi: a
delivered event arrives at a websocket subscriber with its data, a refused or parked one
does not (checked with a sentinel event sent after it), and a parked task is listed whole
(soketi also judges the tokens in ``test_security_channel_auth.py``). A path that is not
UTF-8 once percent-decoded is refused (400) before routing, on every route.

Cases the generators reach rarely have their own tests in ``test_fuzz_edge_cases.py``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from urllib.parse import parse_qsl, quote, unquote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pusherlib import Pusher
from pusherlib.signing import channel_auth_signature, webhook_signature
from settings import Settings
from tests.support.app_under_attack import ADMIN, QUEUE_HEADERS, Target, app_under_attack
from tests.support.figures import write_figures
from tests.support.fuzz_inputs import (
    CONTENT_TYPES,
    bodies,
    channel_names,
    form_fields,
    json_values,
    path_segments,
    socket_ids,
    user_names,
    utf8_path,
    valid_socket_ids,
    webhook_events,
)
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber

EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SECRET = "fuzz-secret"
MASTER_KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
CHANNEL_RULE = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")  # Pusher's channel names
MAX_REQUEST_BYTES = Settings.max_request_bytes  # the default: the app under attack does not set it
TRIED: Counter[str] = Counter()
EVENT_REQUESTS = {  # what /push and the worker are sent: path, body, content type
    "channel": path_segments(channel_names),
    "event": path_segments(st.text(min_size=1, max_size=30)),
    "body": bodies,
    "content_type": st.sampled_from(CONTENT_TYPES),
}
STATUSES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzz_soketi():
    with Soketi(app_id="1", key="key", secret=SECRET, name="soketi-fuzz-endpoints") as server:
        yield server


@pytest.fixture(scope="module")
def watcher(fuzz_soketi):
    """A websocket subscriber and a client to send its sentinels."""
    with Subscriber(fuzz_soketi.ws_url, timeout=20) as subscriber, Pusher.from_url(fuzz_soketi.url) as pusher:
        yield Watcher(subscriber, pusher)


class Watcher:
    """Watches the public channels the fuzzed tasks go to (subscribed on first use)."""

    def __init__(self, subscriber: Subscriber, pusher: Pusher):
        self.subscriber, self.pusher, self.subscribed = subscriber, pusher, set()

    def watch(self, channel: str) -> bool:
        """Subscribe to ``channel`` if a subscriber can (a valid public name); whether it is watched."""
        if channel in self.subscribed:
            return True
        if not CHANNEL_RULE.fullmatch(channel) or channel.startswith(("private-", "presence-")):
            return False
        reply = self.subscriber.subscribe(channel)
        if reply["event"] != "pusher_internal:subscription_succeeded":
            return False
        self.subscribed.add(channel)
        return True

    def arrived(self, channel: str, event: str) -> list[dict]:
        """The events named ``event`` that reached ``channel`` (before a sentinel sent now)."""
        return [
            m for m in self.subscriber.events_before_sentinel(self.pusher, channel) if m["event"] == event
        ]


@pytest.fixture(scope="module")
def target(fuzz_soketi):
    with app_under_attack(
        fuzz_soketi.url, secret=SECRET, DEMO_MODE="1", PUSHER_ENCRYPTION_MASTER_KEY_BASE64=MASTER_KEY
    ) as running:
        yield running
    write_figures(
        "fuzz_endpoints",
        {"inputs_tried": dict(TRIED), "total": sum(TRIED.values()), "answers": dict(STATUSES)},
    )


def check_answer(endpoint: str, response, allowed: set[int]) -> None:
    """A status of ``allowed``, a JSON body, an error message for a refusal, no traceback."""
    STATUSES[f"{endpoint} {response.status_int}"] += 1
    assert response.status_int in allowed, response.body[:300]
    assert b"Traceback" not in response.body and b'File "' not in response.body
    assert response.content_type == "application/json", response.body[:300]
    answer = json.loads(response.body)
    if response.status_int >= 400:
        assert isinstance(answer.get("error"), str) and answer["error"]


@EXAMPLES
@given(**EVENT_REQUESTS, socket_id=st.one_of(st.none(), socket_ids))
def test_push(target: Target, channel, event, body, content_type, socket_id):
    TRIED["/push"] += 1
    target.purge()
    query = "" if socket_id is None else "?" + urlencode({"socket_id": socket_id})
    response = target.post(f"/push/{channel}/{event}{query}", body, content_type)
    check_answer("/push", response, {202, 400, 404, 413} if utf8_path(channel, event) else {400})
    assert target.queued() == (1 if response.status_int == 202 else 0)


def test_a_cookie_left_by_another_test_is_not_sent(target: Target):
    """The module shares one app: a cookie one test sets must not reach the next (test order)."""
    target.app.set_cookie("user", "alice")
    response = target.post("/push/%FF/ev", b"{}", "application/json")
    check_answer("/push", response, {400})


@EXAMPLES
@given(**EVENT_REQUESTS, from_queue=st.booleans())
def test_worker(target: Target, watcher: Watcher, channel, event, body, content_type, from_queue):
    """From the queue: delivered (the event reaches soketi's subscribers with its data) or
    parked (kept whole, nothing sent), answered 200 so the queue forgets it. From anywhere
    else: 403, nothing sent. A path that is not UTF-8 (no task of the app has one): 400."""
    TRIED["/worker/push"] += 1
    target.purge()
    headers = QUEUE_HEADERS if from_queue else {}
    if not utf8_path(channel, event):
        response = target.post(f"/worker/push/{channel}/{event}", body, content_type, headers)
        check_answer("/worker/push (path not UTF-8)", response, {400})
        return
    channel_name, event_name = unquote(channel), unquote(event)
    watched = watcher.watch(channel_name)
    response = target.post(f"/worker/push/{channel}/{event}", body, content_type, headers)
    arrived = watcher.arrived(channel_name, event_name) if watched else None
    if not from_queue:
        check_answer("/worker/push (outside)", response, {403, 404})
        assert not arrived
        return
    check_answer("/worker/push", response, {200, 404})
    if response.status_int == 404:
        return
    outcome = response.json["outcome"]
    assert outcome in ("delivered", "parked")
    if outcome == "parked":
        assert not arrived
        parked = target.app.get("/admin/parked", headers=ADMIN).json["parked"]
        # Kept whole; an encrypted channel's data is withheld from the listing.
        listed = None if channel_name.startswith("private-encrypted-") else body.decode("utf-8", "replace")
        assert [task["body"] for task in parked] == [listed]
    elif watched:
        [received] = arrived
        if content_type == "application/x-www-form-urlencoded":
            assert json.loads(received["data"]) == first_values(body)
        else:
            assert received["data"] == body.decode("utf-8")


def first_values(form: bytes) -> dict[str, str]:
    """Form fields as a dict, a repeated field keeping its first value (as webapp's ``get``)."""
    fields: dict[str, str] = {}
    for name, value in parse_qsl(form.decode("utf-8"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


@EXAMPLES
@given(body=st.one_of(st.lists(json_values, max_size=12).map(json.dumps).map(str.encode), bodies))
def test_worker_batch(target: Target, body):
    """Whatever the body: delivered (soketi took every event, nothing parked) or parked,
    never retried: a malformed task whole, or the chunks (of 10 events) soketi refused."""
    TRIED["/worker/batch"] += 1
    target.purge()
    response = target.post("/worker/batch", body, "application/json", QUEUE_HEADERS)
    check_answer("/worker/batch", response, {200})
    outcome = response.json["outcome"]
    assert outcome in ("delivered", "parked")
    parked = [task["body"] for task in target.app.get("/admin/parked", headers=ADMIN).json["parked"]]
    if outcome == "delivered":
        assert parked == []
        return
    whole = body.decode("utf-8", "replace")
    assert parked
    if parked != [whole]:
        events = json.loads(body)
        for chunk in map(json.loads, parked):
            assert 1 <= len(chunk) <= 10 and all(event in events for event in chunk)


@EXAMPLES
@given(fields=form_fields, signed_in=st.booleans())
def test_channel_auth(target: Target, fields, signed_in):
    """Single or batch: 200 only with a token over the exact ``socket_id:channel`` string."""
    TRIED["/pusher/auth"] += 1
    target.app.reset()
    if signed_in:
        target.app.set_cookie("user", "alice")
    response = target.app.post(
        "/pusher/auth",
        urlencode(fields),
        expect_errors=True,
        content_type="application/x-www-form-urlencoded",
    )
    check_answer("/pusher/auth", response, {200, 400, 403})
    if response.status_int != 200:
        assert "auth" not in response.json
        return
    answers = (
        {fields["channel_name"]: response.json}
        if "channel_name" in fields
        else {name: entry["data"] for name, entry in response.json.items() if entry["status"] == 200}
    )
    for channel, answer in answers.items():
        assert signed_in and ":" not in channel and "\n" not in channel
        expected = channel_auth_signature(
            SECRET.encode(), fields["socket_id"], channel, answer.get("channel_data")
        )
        assert answer["auth"] == f"key:{expected}"


@EXAMPLES
@given(socket_id=st.one_of(valid_socket_ids, socket_ids), user=st.one_of(st.none(), user_names))
def test_user_auth(target: Target, socket_id, user):
    TRIED["/pusher/user-auth"] += 1
    target.app.reset()
    cookie = {} if user is None else {"Cookie": f"user={quote(user)}"}
    response = target.app.post(
        "/pusher/user-auth",
        urlencode({"socket_id": socket_id}),
        headers=cookie,
        content_type="application/x-www-form-urlencoded",
        expect_errors=True,
    )
    check_answer("/pusher/user-auth", response, {200, 400, 403})
    if response.status_int == 200:
        assert json.loads(response.json["user_data"])["id"] == user


webhook_routes = st.sampled_from(
    [
        "/pusher/webhooks",
        "/pusher/events/channel_existence",
        "/pusher/events/presence",
        "/pusher/events/client",
    ]
)


@EXAMPLES
@given(
    route=webhook_routes,
    body=st.one_of(
        st.one_of(webhook_events, json_values).map(
            lambda events: json.dumps({"time_ms": time.time() * 1000, "events": events})
        ),
        bodies,
    ),
    key=st.sampled_from(["key", None, "other"]),
    signed=st.sampled_from([True, True, False]),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_webhooks(target: Target, route, body, key, signed, content_type):
    """Unsigned: 401. Signed by the app's secret: handled (200) or 400 for a bad shape.
    Above ``MAX_REQUEST_BYTES``: 413, whoever signed it."""
    body = body if isinstance(body, bytes) else body.encode()
    TRIED["webhooks"] += 1
    headers = {} if key is None else {"X-Pusher-Key": key}
    headers["X-Pusher-Signature"] = webhook_signature(SECRET.encode() if signed else b"guess", body)
    response = target.post(route, body, content_type, headers)
    check_answer("webhooks", response, {413} if len(body) > MAX_REQUEST_BYTES else {200, 400, 401})
    if response.status_int == 200:
        assert signed and key == "key"
