"""Failed requests: one exception hierarchy with ``.status``, ``.body`` and ``.retryable``.

soketi gives the errors it can (bad signature, unknown app, too much data: it answers
them with HTTP 200 and ``{"error", "code"}``); the fault server gives the rest (429, 5xx,
slow answers, resets).
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import ndb

from pusherlib import (
    Pusher,
    PusherBadAuth,
    PusherBadRequest,
    PusherBadStatus,
    PusherConnectionError,
    PusherError,
    PusherForbidden,
    PusherHTTPError,
    PusherPayloadTooLarge,
    PusherRateLimited,
    PusherServerError,
    PusherTimeout,
    PusherTypeError,
    PusherValueError,
)
from pusherlib.errors import is_permanent
from pusherlib.transports.asyncio import AsyncioTransport
from tests.support.fault_server import Close, FaultServer, Reply, Reset
from tests.support.processes import free_port


@pytest.fixture
def fault():
    with FaultServer() as server:
        yield server


# -- what soketi answers --------------------------------------------------------------------


def test_bad_signature_is_401(soketi):
    client = Pusher.from_url(soketi.url.replace(f":{soketi.secret}@", ":wrong@"))
    with pytest.raises(PusherBadAuth) as caught:
        client.trigger("c", "e", "x")
    error = caught.value
    assert (error.status, error.retryable) == (401, False)
    assert "The secret authentication failed" in str(error)
    assert '"code":401' in error.body.replace(" ", "")


def test_unknown_app_is_404(soketi):
    client = Pusher("999999", soketi.key, soketi.secret, host="127.0.0.1", port=soketi.port, ssl=False)
    with pytest.raises(PusherBadStatus) as caught:
        client.channels_info()
    assert (caught.value.status, caught.value.retryable) == (404, False)


def test_too_much_data_for_the_server_is_413(soketi):
    client = Pusher.from_url(soketi.url, max_payload_bytes=1_000_000)
    with pytest.raises(PusherPayloadTooLarge) as caught:
        client.trigger("c", "e", "x" * 200_000)
    assert (caught.value.status, caught.value.retryable) == (413, False)


def test_async_twin_raises_the_same_error(soketi):
    client = Pusher.from_url(soketi.url.replace(f":{soketi.secret}@", ":wrong@"))
    with ndb.Client(project="test", credentials=AnonymousCredentials()).context():
        future = client.trigger_async("c", "e", "x")
        with pytest.raises(PusherBadAuth):
            future.result()
    client.close()


# -- statuses soketi cannot give ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (400, PusherBadRequest, False),
        (401, PusherBadAuth, False),
        (403, PusherForbidden, False),
        (404, PusherBadStatus, False),
        (413, PusherPayloadTooLarge, False),
        (429, PusherRateLimited, True),
        (500, PusherServerError, True),
        (502, PusherServerError, True),
        (503, PusherServerError, True),
    ],
)
def test_http_statuses(fault, status, error_type, retryable):
    fault.add(Reply(status, b"busy, try later", (("Content-Type", "text/plain"),)))
    with pytest.raises(error_type) as caught:
        Pusher.from_url(fault.pusher_url).trigger("c", "e", "x")
    error = caught.value
    assert (error.status, error.retryable, error.body) == (status, retryable, "busy, try later")
    assert f"Pusher answered {status}: busy, try later" in str(error)
    assert isinstance(error, PusherHTTPError) and isinstance(error, PusherError)


def test_error_inside_a_200_answer(fault):
    fault.add(Reply.json(200, {"error": "Too many events", "code": 429}))
    with pytest.raises(PusherRateLimited) as caught:
        Pusher.from_url(fault.pusher_url).trigger("c", "e", "x")
    assert (caught.value.status, caught.value.retryable) == (429, True)


def test_an_error_key_without_an_error_code_is_data(fault):
    fault.add(Reply.json(200, {"error": "none", "code": 200}))
    assert Pusher.from_url(fault.pusher_url).trigger("c", "e", "x") == {"error": "none", "code": 200}


def test_a_200_answer_that_is_not_json(fault):
    fault.add(Reply(200, b"<html>proxy page</html>"))
    with pytest.raises(PusherBadStatus, match="not JSON") as caught:
        Pusher.from_url(fault.pusher_url).trigger("c", "e", "x")
    assert (caught.value.status, caught.value.retryable) == (200, False)


def test_empty_answers_are_empty_dicts(fault):
    fault.add(Reply(202, b""), Reply(204, b""))
    client = Pusher.from_url(fault.pusher_url)
    assert client.trigger("c", "e", "x") == {}
    assert client.trigger("c", "e", "x") == {}


def test_slow_answer_is_a_timeout(fault):
    fault.add(Reply(200, delay=5))
    with pytest.raises(PusherTimeout, match=r"within 0\.3 s") as caught:
        Pusher.from_url(fault.pusher_url, timeout=0.3).trigger("c", "e", "x")
    assert (caught.value.status, caught.value.retryable) == (None, True)
    assert isinstance(caught.value, PusherConnectionError)


def test_reset_is_a_connection_error(fault):
    fault.add(Reset())
    with pytest.raises(PusherConnectionError) as caught:
        Pusher.from_url(fault.pusher_url).trigger("c", "e", "x")
    assert (caught.value.status, caught.value.retryable) == (None, True)
    assert fault.request_count == 1  # a fresh connection is not retried: the event may have gone


def test_close_without_answer_is_a_connection_error(fault):
    fault.add(Close())
    with pytest.raises(PusherConnectionError, match="closed the connection without answering"):
        Pusher.from_url(fault.pusher_url).trigger("c", "e", "x")
    assert fault.request_count == 1


def test_nobody_listening_is_a_connection_error():
    client = Pusher("1", "k", "s", host="127.0.0.1", port=free_port(), ssl=False)
    with pytest.raises(PusherConnectionError, match="cannot connect") as caught:
        client.trigger("c", "e", "x")
    assert (caught.value.status, caught.value.retryable) == (None, True)


# -- permanent or not: by what the error is -------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (PusherValueError("bad channel"), True),
        (PusherTypeError("bad data"), True),
        (PusherBadRequest("400", status=400), True),
        (PusherPayloadTooLarge("413", status=413), True),
        (PusherBadAuth("401", status=401), False),
        (PusherForbidden("403", status=403), False),
        (PusherBadStatus("404", status=404), False),
        (PusherRateLimited("429", status=429), False),
        (PusherServerError("503", status=503), False),
        (PusherConnectionError("reset"), False),
        (PusherTimeout("slow"), False),
        (ValueError("a stray built-in error"), False),
        (TypeError("another"), False),
        (UnicodeEncodeError("latin-1", "\u0100", 0, 1, "no"), False),
    ],
)
def test_permanent_means_validation_and_400_or_413_only(error, permanent):
    assert is_permanent(error) is permanent


def test_the_status_an_answer_gives_decides_permanence(fault):
    fault.add(Reply(400, b"bad"), Reply(413, b"big"), Reply(401, b"who"))
    client = Pusher.from_url(fault.pusher_url)
    found = []
    for _ in range(3):
        with pytest.raises(PusherHTTPError) as caught:
            client.trigger("c", "e", "x")
        found.append((caught.value.status, is_permanent(caught.value)))
    assert found == [(400, True), (413, True), (401, False)]


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -float("inf"), 0, -1, True, "5"])
def test_timeout_must_be_a_finite_positive_number(timeout):
    with pytest.raises(PusherValueError, match="timeout must be a positive number"):
        Pusher("1", "key", "secret", timeout=timeout)


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_https_against_a_plain_http_server_here_fails_fast_with_a_hint(soketi, transport):
    """soketi speaks plain HTTP and never answers a TLS hello: on this machine the handshake
    gets a second, not the request's 5 s, and the error says to use http://."""
    options = {} if transport == "blocking" else {"transport": AsyncioTransport()}
    client = Pusher(
        soketi.app_id,
        soketi.key,
        soketi.secret,
        ssl=True,
        host="127.0.0.1",
        port=soketi.port,
        timeout=5,
        **options,
    )

    async def on_a_loop() -> None:
        try:
            await client.trigger_async("c", "e", "x")
        finally:
            await client.transport.aclose()

    gc.collect()
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(
            PusherConnectionError, match=r"is it a plain-HTTP server\? Use http://"
        ) as refused:
            if transport == "blocking":
                client.trigger("c", "e", "x")
            else:
                asyncio.run(on_a_loop())
        client.close()
        gc.collect()
    assert [
        str(w.message) for w in caught if issubclass(w.category, ResourceWarning)
    ] == []  # nothing left open
    assert refused.value.retryable and time.monotonic() - started < 4  # before the request's 5 s
