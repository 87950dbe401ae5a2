"""Bad input the generators reach rarely, one case each: oversized bodies refused before they
are read, odd encodings, huge form fields, deep nesting, wrong content types.

The cases marked ``xfail`` are bugs found here and reported to the owners of the files
named in their reasons (strict: a fix makes them fail until the mark is removed, and the
matching clause of ``tests.support.fuzz_inputs.known_bug`` with it).
"""

from __future__ import annotations

import io
import json

import pytest
import webtest

from pusherlib import Pusher, PusherValueError
from pusherlib.signing import webhook_signature
from tests.support.app_under_attack import QUEUE_HEADERS, Target, app_under_attack

SECRET = "edge-secret"
LIMIT = 65536
DEEP = 30_000  # 60 KB of brackets: under MAX_REQUEST_BYTES, far beyond the parser's recursion limit
FORM = "application/x-www-form-urlencoded"


def reported(reason: str) -> pytest.MarkDecorator:
    """A bug found here and reported: its fix makes the test pass, and strict xfail fail."""
    return pytest.mark.xfail(strict=True, reason=reason)


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


def post_stream(target: Target, path: str, data: bytes, content_type: str, *, declared: bool = True):
    """POST ``data`` from a counting stream, with or without a Content-Length."""
    body = CountingInput(data)
    request = webtest.TestRequest.blank(path, method="POST")
    request.content_type = content_type
    request.environ["wsgi.input"] = body
    if declared:
        request.environ["CONTENT_LENGTH"] = str(len(data))
    else:
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["wsgi.input_terminated"] = True
    response = webtest.TestApp(target.app.app, lint=False).do_request(request, status="*")
    return response, body.read_bytes


def assert_refused(response, status: int) -> None:
    assert response.status_int == status, response.body[:300]
    assert response.content_type == "application/json"
    assert json.loads(response.body)["error"]
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


@reported(
    "handlers/pusher_auth/extension.py reads request.POST / request.body whole: "
    "no MAX_REQUEST_BYTES limit on /pusher/auth, /pusher/user-auth, /pusher/webhooks",
)
@pytest.mark.parametrize("path", ["/pusher/auth", "/pusher/user-auth", "/pusher/webhooks"])
def test_auth_and_webhook_bodies_above_the_limit_are_refused_early(target, path):
    response, read = post_stream(target, path, b"socket_id=1.1&x=" + b"x" * 5_000_000, FORM)
    assert_refused(response, 413)
    assert read == 0


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


@reported("handlers/push.py catches ValueError, not RecursionError: 500")
def test_deeply_nested_json_to_push_gets_400(target):
    response = target.post("/push/ch/ev", b"[" * DEEP + b"]" * DEEP, "application/json")
    assert_refused(response, 400)
    assert target.queued() == 0


@reported("pushqueue/wire.py parse_batch lets RecursionError out: 500, retried, never parked")
def test_deeply_nested_json_in_a_batch_task_is_parked(target):
    response = target.post("/worker/batch", b"[" * DEEP + b"]" * DEEP, "application/json", QUEUE_HEADERS)
    assert response.status_int == 200 and response.json["outcome"] == "parked"


@reported("pusherlib/webhooks.py check_webhook lets RecursionError out: 500")
def test_deeply_nested_json_in_a_signed_webhook_gets_400(target):
    body = b'{"time_ms": 1, "events": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    headers = {"X-Pusher-Key": "key", "X-Pusher-Signature": webhook_signature(SECRET.encode(), body)}
    assert_refused(target.post("/pusher/webhooks", body, "application/json", headers), 400)


@reported(
    "pusherlib/api.py encodes event data with str.encode('utf-8'): a lone surrogate raises "
    "UnicodeEncodeError, not PusherValueError (500 at /push)",
)
def test_a_lone_surrogate_is_refused(target):
    assert_refused(target.post("/push/ch/ev", b'"\\ud800"', "application/json"), 400)
    assert target.queued() == 0
    with pytest.raises(PusherValueError):
        Pusher("1", "key", "secret").trigger("ch", "ev", "\ud800")


@reported(
    "handlers/push.py parses NaN/Infinity and pusherlib sends them: not JSON, so a browser "
    "gets a string instead of the data",
)
@pytest.mark.parametrize("body", [b"NaN", b'{"a": Infinity}', b"1e999"])
def test_json_that_is_not_json_is_refused(target, body):
    assert_refused(target.post("/push/ch/ev", body, "application/json"), 400)


@reported(
    "handlers/application.py: webapp2 decodes PATH_INFO as UTF-8 while routing; _json_error "
    "reads request.path again and fails, so webapp2's HTML 500 page answers",
)
@pytest.mark.parametrize("path", ["/push/%ff/ev", "/push/ch/%C3%28", "/%ff"])
def test_a_path_that_is_not_utf8_gets_a_json_400(target, path):
    assert_refused(target.post(path, b"{}", "application/json"), 400)


@reported("handlers/push.py reads request.GET outside its try: 500")
def test_a_socket_id_query_that_is_not_utf8_gets_400(target):
    assert_refused(target.post("/push/ch/ev?socket_id=%ff", b"{}", "application/json"), 400)
    assert target.queued() == 0


def test_a_form_with_bad_escapes_keeps_what_it_can_read(target):
    """``%ff`` in a form field becomes U+FFFD, as browsers and webapp do; nothing fails."""
    response = target.post("/push/ch/ev", b"a=%ff&b=ok", FORM)
    assert response.status_int == 202 and target.queued() == 1


@reported(
    "handlers/pusher_auth/channel_auth.py _signed answers 500 for a private-encrypted- channel "
    "when no master key is configured: any client can cause it (a 4xx says the same)",
)
def test_an_encrypted_channel_without_a_master_key_is_a_clear_4xx(target):
    target.app.set_cookie("user", "alice")
    response = target.app.post(
        "/pusher/auth", {"socket_id": "1.1", "channel_name": "private-encrypted-x"}, expect_errors=True
    )
    assert 400 <= response.status_int < 500, response.body


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x"]
)
def test_auth_fields_in_another_content_type_get_400(target, content_type):
    target.app.set_cookie("user", "alice")
    body = json.dumps({"socket_id": "1.1", "channel_name": "private-x"}).encode()
    response = target.post("/pusher/auth", body, content_type)
    assert_refused(response, 400)
    assert "auth" not in response.json
