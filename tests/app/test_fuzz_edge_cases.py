"""Bad input the generators reach rarely, one case each: oversized bodies refused before they
are read, odd encodings, huge form fields, deep nesting, wrong content types.

Several cases were bugs found here (see RELIABILITY.md): each refusal is checked by its
status and by what its message says, so a test passes only for the reason it names.
"""

from __future__ import annotations

import io
import json

import pytest
import webtest

from pusherlib import Pusher, PusherValueError
from pusherlib.signing import webhook_signature
from tests.support.app_under_attack import QUEUE_HEADERS, Target, app_under_attack
from tests.support.credentials import with_publisher_token

SECRET = "edge-secret"
LIMIT = 65536
DEEP = 30_000  # 60 KB of brackets: under MAX_REQUEST_BYTES, far beyond the parser's recursion limit
FORM = "application/x-www-form-urlencoded"
BODY_ROUTES = ["/pusher/auth", "/pusher/user-auth", "/pusher/webhooks", "/demo/name"]  # besides /push


class CountingInput(io.BytesIO):
    """A request body that counts the bytes the app read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.read_bytes += len(line)
        return line


@pytest.fixture(scope="module")
def target():
    with app_under_attack(secret=SECRET, DEMO_MODE="1") as running:
        yield running


@pytest.fixture(autouse=True)
def empty_queues(target):
    target.purge()
    target.app.reset()


def post_stream(
    target: Target,
    path: str,
    data: bytes,
    content_type: str,
    *,
    declared: bool = True,
    headers: dict[str, str] | None = None,
):
    """POST ``data`` from a counting stream, with or without a Content-Length."""
    body = CountingInput(data)
    request = webtest.TestRequest.blank(path, method="POST", headers=with_publisher_token(path, headers))
    request.content_type = content_type
    request.environ["wsgi.input"] = body
    if declared:
        request.environ["CONTENT_LENGTH"] = str(len(data))
    else:
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["wsgi.input_terminated"] = True
    response = webtest.TestApp(target.app.app, lint=False).do_request(request, status="*")
    return response, body.read_bytes


def assert_refused(response, status: int, says: str = "") -> None:
    """A JSON refusal with ``status`` whose message contains ``says``."""
    assert response.status_int == status, response.body[:300]
    assert response.content_type == "application/json"
    assert says in json.loads(response.body)["error"]
    assert b"Traceback" not in response.body


# -- sizes ----------------------------------------------------------------------------------


def test_a_body_above_the_limit_is_refused_before_it_is_read(target):
    response, read = post_stream(target, "/push/ch/ev", b'"' + b"a" * 10_000_000 + b'"', "application/json")
    assert_refused(response, 413)
    assert read == 0 and target.queued() == 0


def test_a_body_without_length_is_read_only_up_to_the_limit(target):
    data = b'"' + b"a" * 1_000_000 + b'"'
    response, read = post_stream(target, "/push/ch/ev", data, "application/json", declared=False)
    assert_refused(response, 413)
    assert read <= LIMIT + 1 and target.queued() == 0


def test_a_huge_form_field_is_refused(target):
    response, read = post_stream(target, "/push/ch/ev", b"message=" + b"x" * 2_000_000, FORM)
    assert_refused(response, 413)
    assert read == 0 and target.queued() == 0


def test_data_above_pushers_10_kb_is_refused_when_queued_not_later(target):
    response = target.post("/push/ch/ev", json.dumps({"k": "é" * 6000}).encode(), "application/json")
    assert_refused(response, 400)
    assert "bytes" in response.json["error"] and target.queued() == 0


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_auth_and_webhook_bodies_above_the_limit_are_refused_early(target, path):
    response, read = post_stream(target, path, b"socket_id=1.1&x=" + b"x" * 5_000_000, FORM)
    assert_refused(response, 413, f"at most {LIMIT} are accepted")
    assert read == 0


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_auth_and_webhook_bodies_without_length_are_read_only_up_to_the_limit(target, path):
    data = b"socket_id=1.1&x=" + b"x" * 1_000_000
    response, read = post_stream(target, path, data, FORM, declared=False)
    assert_refused(response, 413, f"larger than {LIMIT} bytes")
    assert read <= LIMIT + 1


def test_auth_bodies_within_the_limit_are_read_without_length(target):
    """The chunked body read up to the limit is the one the form fields come from."""
    data = b"socket_id=1.1&channel_name=private-x&pad=" + b"x" * 1000
    cookie = {"Cookie": "user=alice"}
    response, _ = post_stream(target, "/pusher/auth", data, FORM, declared=False, headers=cookie)
    assert response.status_int == 200 and response.json["auth"].startswith("key:")


# -- encodings and content types --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xfe{", "application/json"),
        (b"<event/>", "application/xml"),
        (b"hello", "text/plain"),
        (b"", "application/json"),
        (b"\x00\x01", "application/octet-stream"),
    ],
    ids=["not-utf8", "xml", "plain-text", "empty", "binary"],
)
def test_a_body_that_is_not_json_or_a_form_gets_400_and_queues_nothing(target, body, content_type):
    response = target.post("/push/ch/ev", body, content_type)
    assert_refused(response, 400)
    assert target.queued() == 0


def test_json_nested_100_deep_is_accepted_as_data(target):
    response = target.post("/push/ch/ev", b"[" * 100 + b"]" * 100, "application/json")
    assert response.status_int == 202 and target.queued() == 1


def test_deeply_nested_json_to_push_gets_400(target):
    response = target.post("/push/ch/ev", b"[" * DEEP + b"]" * DEEP, "application/json")
    assert_refused(response, 400, "nested more than 256 levels")
    assert target.queued() == 0


def test_json_nested_256_deep_is_accepted_and_257_refused(target):
    assert target.post("/push/ch/ev", b"[" * 256 + b"]" * 256, "application/json").status_int == 202
    assert_refused(target.post("/push/ch/ev", b"[" * 257 + b"]" * 257, "application/json"), 400, "nested")
    assert target.queued() == 1


def test_brackets_inside_strings_do_not_count_as_nesting(target):
    body = json.dumps({"text": "[" * 1000 + "{" * 1000 + '\\"['}).encode()
    assert target.post("/push/ch/ev", body, "application/json").status_int == 202


def test_deeply_nested_json_in_a_batch_task_is_parked(target):
    response = target.post("/worker/batch", b"[" * DEEP + b"]" * DEEP, "application/json", QUEUE_HEADERS)
    assert response.status_int == 200 and response.json["outcome"] == "parked"
    assert "nested more than 256 levels" in response.json["error"]
    assert target.pusher.request_count == 0


def test_deeply_nested_json_in_a_signed_webhook_gets_400(target):
    body = b'{"time_ms": 1, "events": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    headers = {"X-Pusher-Key": "key", "X-Pusher-Signature": webhook_signature(SECRET.encode(), body)}
    assert_refused(target.post("/pusher/webhooks", body, "application/json", headers), 400, "nested")


def test_a_lone_surrogate_is_refused(target):
    assert_refused(target.post("/push/ch/ev", b'"\\ud800"', "application/json"), 400, "lone surrogate")
    assert target.queued() == 0
    pusher = Pusher("1", "key", "secret")
    for data in ("\ud800", {"text": "é\udfff"}):
        with pytest.raises(PusherValueError, match="lone surrogate"):
            pusher.trigger("ch", "ev", data)
    with pytest.raises(PusherValueError, match="event name is not valid Unicode"):
        pusher.trigger("ch", "\ud800", "data")


@pytest.mark.parametrize(
    ("body", "says"),
    [(b"NaN", "NaN is not"), (b'{"a": Infinity}', "Infinity is not"), (b"[-1e999]", "out of range")],
)
def test_json_that_is_not_json_is_refused(target, body, says):
    assert_refused(target.post("/push/ch/ev", body, "application/json"), 400, says)
    assert target.queued() == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": [float("-inf")]}])
def test_pusherlib_never_sends_nan_or_infinity(value):
    with pytest.raises(PusherValueError, match="Out of range float"):
        Pusher("1", "key", "secret").trigger("ch", "ev", value)


@pytest.mark.parametrize("path", ["/push/%ff/ev", "/push/ch/%C3%28", "/%ff"])
def test_a_path_that_is_not_utf8_gets_a_json_400(target, path):
    assert_refused(target.post(path, b"{}", "application/json"), 400, "path is not UTF-8")
    assert target.queued() == 0


def test_a_socket_id_query_that_is_not_utf8_gets_400(target):
    assert_refused(target.post("/push/ch/ev?socket_id=%ff", b"{}", "application/json"), 400, "query string")
    assert target.queued() == 0


def test_a_form_with_bad_escapes_keeps_what_it_can_read(target):
    """``%ff`` in a form field becomes U+FFFD, as browsers and webapp do; nothing fails."""
    response = target.post("/push/ch/ev", b"a=%ff&b=ok", FORM)
    assert response.status_int == 202 and target.queued() == 1


def test_an_encrypted_channel_without_a_master_key_is_a_clear_4xx(target):
    target.app.set_cookie("user", "alice")
    response = target.app.post(
        "/pusher/auth", {"socket_id": "1.1", "channel_name": "private-encrypted-x"}, expect_errors=True
    )
    assert_refused(response, 404, "encrypted channels are not enabled")
    assert "auth" not in response.json
    batch = target.app.post(
        "/pusher/auth",
        {"socket_id": "1.1", "channel_name[0]": "private-encrypted-x", "channel_name[1]": "private-x"},
    )
    assert batch.json["private-encrypted-x"]["status"] == 404
    assert "not enabled" in batch.json["private-encrypted-x"]["error"]
    assert batch.json["private-x"]["status"] == 200


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x"]
)
def test_auth_fields_in_another_content_type_get_400(target, content_type):
    target.app.set_cookie("user", "alice")
    body = json.dumps({"socket_id": "1.1", "channel_name": "private-x"}).encode()
    response = target.post("/pusher/auth", body, content_type)
    assert_refused(response, 400)
    assert "auth" not in response.json
