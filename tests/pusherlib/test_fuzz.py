"""Property tests over pusherlib's checks: whatever comes in, the answer is the documented
one or a ``PusherError`` saying what is wrong, before any request is sent.

The client points at a stub HTTP server that counts requests: a refusal must leave the
count unchanged (nothing half-sent). Each property checks pusherlib against rules written
here independently from Pusher's documentation. Figures go to
``test-output/reliability/fuzz_pusherlib.json``.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pusherlib import Pusher, PusherError, PusherTypeError, PusherValueError, validation
from pusherlib.api import read_response
from pusherlib.transports.base import Response
from pusherlib.webhooks import WebhookRejected, check_webhook
from tests.support.fault_server import FaultServer, Reply
from tests.support.figures import write_figures
from tests.support.fuzz_inputs import NASTY, channel_names, json_values

CHANNEL_RULE = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")
USER_ID_RULE = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,200}")
SOCKET_ID_RULE = re.compile(r"[0-9]+\.[0-9]+")

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRIED: Counter[str] = Counter()

not_str = st.one_of(st.none(), st.integers(), st.binary(max_size=5), st.lists(st.integers(), max_size=2))


def channel_is_valid(name: str) -> bool:
    if name.startswith("#server-to-user-"):
        return bool(USER_ID_RULE.fullmatch(name.removeprefix("#server-to-user-")))
    return bool(CHANNEL_RULE.fullmatch(name))


@pytest.fixture(scope="module")
def server():
    with FaultServer(default=Reply.json(200, {})) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    master_key = base64.b64encode(b"k" * 32).decode()
    with Pusher.from_url(server.pusher_url, encryption_master_key_base64=master_key) as pusher:
        yield pusher


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    write_figures("fuzz_pusherlib", {"inputs_tried": dict(TRIED), "total": sum(TRIED.values())})


def sent_or_refused(server: FaultServer, valid: bool, call) -> None:
    """``call()`` sends exactly one request when ``valid``, else raises a PusherError and sends none."""
    before = server.request_count
    if valid:
        call()
        assert server.request_count == before + 1
    else:
        with pytest.raises((PusherValueError, PusherTypeError)) as refused:
            call()
        assert str(refused.value)  # a message that says what is wrong
        assert server.request_count == before


@EXAMPLES
@given(name=channel_names)
def test_channel_names(server, client, name):
    TRIED["channel names"] += 1
    valid = channel_is_valid(name)
    if valid:
        assert validation.channel_name(name) == name
    else:
        with pytest.raises(PusherValueError):
            validation.channel_name(name)
    sent_or_refused(server, valid, lambda: client.trigger(name, "event", {}))


@EXAMPLES
@given(value=not_str)
def test_names_of_the_wrong_type(client, value):
    TRIED["names of the wrong type"] += 1
    for check in (validation.channel_name, validation.event_name, validation.socket_id):
        with pytest.raises(PusherTypeError):
            check(value)


@EXAMPLES
@given(name=st.one_of(st.text(max_size=30), st.text(min_size=195, max_size=210)))
@example(name="pusher_internal:member_added")  # refused: the protocol's own
def test_event_names(server, client, name):
    TRIED["event names"] += 1
    valid = 1 <= len(name) <= 200 and not name.startswith(validation.RESERVED_EVENT_PREFIXES)
    sent_or_refused(server, valid, lambda: client.trigger("ch", name, {}))


@EXAMPLES
@given(
    socket_id=st.one_of(
        st.from_regex(SOCKET_ID_RULE, fullmatch=True), st.text(alphabet="0123456789." + NASTY)
    )
)
def test_socket_ids(server, client, socket_id):
    TRIED["socket ids"] += 1
    valid = bool(SOCKET_ID_RULE.fullmatch(socket_id))
    if socket_id == "":
        valid = True  # an empty form field excludes nobody, as in the official library
    sent_or_refused(server, valid, lambda: client.trigger("ch", "ev", {}, socket_id=socket_id))


@EXAMPLES
@given(size=st.integers(10_100, 10_400), char=st.sampled_from(["a", "é", "漢", "😀"]))
def test_data_sizes(server, client, size, char):
    """Pusher's limit is 10 KB of UTF-8 bytes, not characters."""
    TRIED["data sizes"] += 1
    data = char * (size // len(char.encode()))
    valid = len(data.encode()) <= 10240
    sent_or_refused(server, valid, lambda: client.trigger("ch", "ev", data))


@EXAMPLES
@given(count=st.integers(0, 130))
def test_channel_counts(server, client, count):
    TRIED["channel counts"] += 1
    channels = [f"c{i}" for i in range(count)]
    sent_or_refused(server, 1 <= count <= 100, lambda: client.trigger(channels, "ev", {}))


batch_events = st.one_of(
    st.fixed_dictionaries(
        {"channel": st.sampled_from(["ch", "private-x", "bad channel", ""]), "name": st.text(max_size=5)},
        optional={"data": json_values, "socket_id": st.sampled_from(["1.2", "x", ""]), "extra": json_values},
    ),
    json_values,
)


def batch_is_valid(batch: object) -> bool:
    if not isinstance(batch, list) or not 1 <= len(batch) <= 10:
        return False
    for event in batch:
        if not isinstance(event, dict) or set(event) - {"channel", "name", "data", "socket_id", "info"}:
            return False
        if not {"channel", "name", "data"} <= set(event) or not channel_is_valid(event["channel"]):
            return False
        if not event["name"] or event.get("socket_id") not in (None, "", "1.2"):
            return False
        if not data_is_json(event["data"]):
            return False
    return True


def data_is_json(data: object) -> bool:
    """Event data is sent as it is when a string, else as JSON, which has no infinity or NaN."""
    if isinstance(data, str):
        return True
    try:
        json.dumps(data, allow_nan=False)
    except ValueError:
        return False
    return True


@EXAMPLES
@given(batch=st.one_of(st.lists(batch_events, max_size=12), json_values))
@example(batch=[{"channel": "ch", "name": "e", "data": {"x": float("inf")}}])  # refused: not JSON
def test_batch_shapes(server, client, batch):
    TRIED["batch shapes"] += 1
    sent_or_refused(server, batch_is_valid(batch), lambda: client.trigger_batch(batch))


@EXAMPLES
@given(
    status=st.integers(100, 599),
    body=st.one_of(st.binary(max_size=60), json_values.map(json.dumps).map(str.encode)),
)
def test_any_answer_is_read_or_raised_as_a_pusher_error(status, body):
    TRIED["server answers"] += 1
    try:
        read_response(Response(status, body))
    except PusherError as exc:
        assert exc.status is not None
    else:
        assert 200 <= status < 300


@EXAMPLES
@given(
    key=st.one_of(st.none(), st.text(max_size=10), st.just("key")),
    signature=st.one_of(st.none(), st.text(max_size=70), st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
    body=st.one_of(st.binary(max_size=80), json_values.map(json.dumps)),
)
def test_webhook_checks_refuse_anything_unsigned(key, signature, body):
    """Arbitrary headers and bodies: refused with a reason, never another exception."""
    TRIED["webhook headers and bodies"] += 1
    with pytest.raises(WebhookRejected) as refused:
        check_webhook(app_key="key", secret=b"secret", key=key, signature=signature, body=body)
    assert refused.value.reason in ("key", "signature")
