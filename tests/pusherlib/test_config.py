"""Configuring a client from a URL or the environment (``Pusher.from_url``, ``from_env``)."""

from __future__ import annotations

import pytest

from pusherlib import Pusher, PusherValueError, pusher_from_url


def test_from_url_with_a_port_works_against_soketi(soketi, subscriber):
    # The official library cannot parse a URL with a port.
    assert f":{soketi.port}/apps/" in soketi.url
    with Pusher.from_url(soketi.url) as client:
        subscriber.subscribe("configured")
        client.trigger("configured", "e", "x")
    assert subscriber.event("e", "configured")["data"] == "x"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://key:secret@api-eu.pusher.com/apps/123",
            ("123", "key", "secret", "api-eu.pusher.com", 443, True),
        ),
        ("http://key:secret@localhost/apps/9", ("9", "key", "secret", "localhost", 80, False)),
        ("http://key:secret@localhost:6001/apps/9/", ("9", "key", "secret", "localhost", 6001, False)),
        ("https://k%3Ay:s%40c%2Fr@h:8443/apps/1", ("1", "k:y", "s@c/r", "h", 8443, True)),
    ],
)
def test_from_url_parts(url, expected):
    client = Pusher.from_url(url)
    assert (client.app_id, client.key, client.secret, client.host, client.port, client.ssl) == expected


def test_from_url_passes_options():
    client = Pusher.from_url("http://k:s@h/apps/1", timeout=2.5, max_payload_bytes=100)
    assert client.timeout == 2.5
    with pytest.raises(PusherValueError, match="at most 100"):
        client.trigger("c", "e", "x" * 101)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://k:s@h/apps/1", "a Pusher URL looks like"),
        ("http://h/apps/1", "a Pusher URL looks like"),
        ("http://k@h/apps/1", "a Pusher URL looks like"),
        ("http://k:s@h/apps", "a Pusher URL looks like"),
        ("http://k:s@h/other/1", "a Pusher URL looks like"),
        ("http://k:s@h/apps/1/events", "a Pusher URL looks like"),
        ("http://k:s@h:port/apps/1", "port of the Pusher URL is not a number"),
    ],
)
def test_bad_urls(url, match):
    with pytest.raises(PusherValueError, match=match):
        Pusher.from_url(url)


def test_from_env(monkeypatch):
    monkeypatch.setenv("PUSHER_URL", "https://k:s@h/apps/5")
    monkeypatch.setenv("OTHER_PUSHER", "http://k2:s2@h2:81/apps/6")
    assert Pusher.from_env().app_id == "5"
    other = Pusher.from_env("OTHER_PUSHER", timeout=1)
    assert (other.app_id, other.key, other.port, other.timeout) == ("6", "k2", 81, 1)
    assert pusher_from_url().app_id == "5"


def test_from_env_unset(monkeypatch):
    monkeypatch.delenv("PUSHER_URL", raising=False)
    with pytest.raises(PusherValueError, match="environment variable PUSHER_URL is not set"):
        Pusher.from_env()
    with pytest.raises(PusherValueError, match="PUSHER_URL is not set"):
        pusher_from_url()


def test_from_url_unescapes_a_named_app_id():
    assert Pusher.from_url("http://k:s@h/apps/my%2Dapp").app_id == "my-app"
    with pytest.raises(PusherValueError, match="without spaces"):
        Pusher.from_url("http://k:s@h/apps/my%20app")
