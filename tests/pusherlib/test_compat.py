"""The official library's constructor and calls work unchanged, against soketi: named app
ids, positional arguments in the official order, ``backend=``, ``json_decoder``, the raw
``encryption_master_key``, ``already_encoded``, proxies (``proxy=`` and the environment),
and every example call of the official README."""

from __future__ import annotations

import base64
import inspect
import json
import time

import pusher as official
import pusher.gae
import pusher.requests
import pytest

from pusherlib import AsyncioTransport, HTTPTransport, Pusher, PusherValueError, UrlfetchTransport, encryption
from pusherlib.proxies import proxy_for
from pusherlib.signing import webhook_signature
from tests.support.proxy import ForwardProxy
from tests.support.soketi import Soketi, unique
from tests.support.subscriber import Subscriber


# pusher.aiohttp and pusher.tornado import aiohttp and tornado, which are not installed:
# stand-ins with the official class names (backends are recognised by name).
class AsyncIOBackend:
    pass


class TornadoBackend:
    pass


RAW_MASTER_KEY = "0123456789abcdef0123456789abcdef"  # 32 bytes: the older, raw form


@pytest.fixture(scope="module")
def named_soketi():
    """soketi with its default kind of app id: a name, not a number."""
    with Soketi(app_id="app-id", name="soketi-named-app") as server:
        yield server


def client_for(server: Soketi, **options) -> Pusher:
    """A client built with the official positional order: app_id, key, secret, ssl, host, port."""
    return Pusher(server.app_id, server.key, server.secret, False, "127.0.0.1", server.port, **options)


# -- app ids -------------------------------------------------------------------------------


def test_a_named_app_id_triggers_and_queries_on_soketi(named_soketi):
    channel = unique("named-")
    with client_for(named_soketi) as client, Subscriber(named_soketi.ws_url) as subscriber:
        assert client.app_id == "app-id"
        subscriber.subscribe(channel)
        client.trigger(channel, "hello", {"n": 1})
        assert json.loads(subscriber.event("hello", channel)["data"]) == {"n": 1}
        assert client.channel_info(channel)["occupied"] is True
        assert Pusher.from_url(named_soketi.url).app_id == "app-id"


# -- the official constructor --------------------------------------------------------------


def test_positional_arguments_are_in_the_official_order():
    ours = list(inspect.signature(Pusher).parameters)
    theirs = [
        name
        for name, parameter in inspect.signature(official.Pusher).parameters.items()
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert ours[: len(theirs)] == theirs


def test_positional_timeout_and_cluster_land_where_the_official_library_puts_them():
    args = ("1", "k", "s", True, None, None, 2.5, "eu")
    ours, theirs = Pusher(*args), official.Pusher(*args)
    assert (ours.timeout, ours.host) == (theirs._pusher_client.timeout, "api-eu.pusher.com")


@pytest.mark.parametrize(
    ("backend", "transport_type"),
    [
        (pusher.requests.RequestsBackend, HTTPTransport),
        (pusher.gae.GAEBackend, UrlfetchTransport),
        (AsyncIOBackend, AsyncioTransport),
    ],
)
def test_official_backends_map_onto_transports(backend, transport_type):
    assert type(Pusher("1", "k", "s", backend=backend).transport) is transport_type


def test_the_tornado_backend_is_refused_with_the_way_out():
    with pytest.raises(PusherValueError, match="AsyncioTransport"):
        Pusher("1", "k", "s", backend=TornadoBackend)


def test_the_requests_backend_triggers_on_soketi(soketi, subscriber):
    channel = unique("backend-")
    subscriber.subscribe(channel)
    with client_for(soketi, backend=pusher.requests.RequestsBackend) as client:
        client.trigger(channel, "e", "via backend=")
    assert subscriber.event("e", channel)["data"] == "via backend="


class CountingDecoder(json.JSONDecoder):
    """Reads every integer as a ``Count``: proves the decoder is used."""

    def __init__(self, **options):
        super().__init__(parse_int=Count, **options)


class Count(int):
    pass


def test_json_decoder_reads_answers_and_webhooks(soketi, subscriber):
    channel = unique("presence-decoder-")
    with client_for(soketi, json_decoder=CountingDecoder) as client:
        member = client.authenticate(channel, subscriber.socket_id, {"user_id": "7"})
        subscriber.subscribe(channel, member)
        assert type(client.channel_info(channel, ["user_count"])["user_count"]) is Count
        body = json.dumps({"time_ms": int(time.time() * 1000), "events": []})
        signature = webhook_signature(soketi.secret.encode(), body.encode())
        assert type(client.validate_webhook(soketi.key, signature, body)["time_ms"]) is Count


def test_the_raw_encryption_master_key_encrypts_like_the_base64_one(soketi, subscriber):
    channel = unique("private-encrypted-raw-")
    base64_key = base64.b64encode(RAW_MASTER_KEY.encode()).decode()
    with client_for(soketi, encryption_master_key=RAW_MASTER_KEY) as client:
        answer = client.authenticate(channel, subscriber.socket_id)
        assert answer == client_for(soketi, encryption_master_key_base64=base64_key).authenticate(
            channel, subscriber.socket_id
        )
        assert subscriber.subscribe(channel, answer)["event"] == "pusher_internal:subscription_succeeded"
        client.trigger(channel, "secret", {"code": 7})
    payload = subscriber.event("secret", channel)["data"]
    assert json.loads(encryption.decrypt(payload, base64.b64decode(answer["shared_secret"]))) == {"code": 7}


def test_both_master_key_forms_at_once_are_refused():
    with pytest.raises(PusherValueError, match="not both"):
        Pusher("1", "k", "s", encryption_master_key=RAW_MASTER_KEY, encryption_master_key_base64="eA==")


def test_already_encoded_data_is_sent_as_it_is(soketi, subscriber):
    channel = unique("encoded-")
    subscriber.subscribe(channel)
    with client_for(soketi) as client:
        client.trigger(channel, "single", '{"a":1}', already_encoded=True)
        client.trigger_batch(
            batch=[{"channel": channel, "name": "batched", "data": "[1,2]"}], already_encoded=True
        )
        with pytest.raises(TypeError, match="already_encoded data must be a str"):
            client.trigger(channel, "e", {"a": 1}, already_encoded=True)
        with pytest.raises(PusherValueError, match="at most 10240"):
            client.trigger(channel, "e", "x" * 10241, already_encoded=True)
    assert subscriber.event("single", channel)["data"] == '{"a":1}'
    assert subscriber.event("batched", channel)["data"] == "[1,2]"


# -- every example of the official README ------------------------------------------------------


def test_every_official_readme_example_runs_against_soketi(soketi):
    # Construction examples (only the first can reach soketi; the others are checked offline).
    Pusher(app_id="4", key="key", secret="secret")
    hosted = Pusher(app_id="4", key="key", secret="secret", ssl=True, cluster="eu")
    assert (hosted.host, hosted.port, hosted.ssl) == ("api-eu.pusher.com", 443, True)
    pusher = client_for(soketi)
    a_channel, another = unique("a_channel"), unique("another_channel")
    room = unique("presence-chatroom")
    with pusher, Subscriber(soketi.ws_url) as watcher, Subscriber(soketi.ws_url) as member:
        watcher.subscribe(a_channel)
        watcher.subscribe(another)
        pusher.trigger(a_channel, "an_event", {"some": "data"})
        events = pusher.trigger([a_channel, another], "an_event", {"some": "data"}, "1234.12")
        assert isinstance(events, dict)
        assert json.loads(watcher.event("an_event", a_channel)["data"]) == {"some": "data"}
        assert json.loads(watcher.event("an_event", another)["data"]) == {"some": "data"}
        # Authenticating (the README's calls, with a real socket so soketi judges the answers).
        auth = pusher.authenticate_subscription(channel=unique("private-channel"), socket_id=member.socket_id)
        assert "auth" in auth
        auth = pusher.authenticate_subscription(
            channel=room,
            socket_id=member.socket_id,
            custom_data={"user_id": "1", "user_info": {"twitter": "@pusher"}},
        )
        assert member.subscribe(room, auth)["event"] == "pusher_internal:subscription_succeeded"
        # Querying.
        channels = pusher.channels_info("presence-", ["user_count"])
        assert room in channels["channels"]
        channel = pusher.channel_info(room, ["user_count"])
        assert (channel["occupied"], channel["user_count"]) == (True, 1)
        assert pusher.users_info(room) == {"users": [{"id": "1"}]}
        # Receiving webhooks.
        body = json.dumps(
            {"time_ms": int(time.time() * 1000), "events": [{"name": "event_name", "some": "data"}]}
        )
        webhook = pusher.validate_webhook(
            key=soketi.key, signature=webhook_signature(soketi.secret.encode(), body.encode()), body=body
        )
        assert webhook["events"] == [{"name": "event_name", "some": "data"}]


# -- proxies -----------------------------------------------------------------------------------


def test_proxy_argument_sends_through_the_proxy(soketi, subscriber):
    channel = unique("proxied-")
    subscriber.subscribe(channel)
    with ForwardProxy() as proxy, client_for(soketi, proxy=f"http://127.0.0.1:{proxy.port}") as client:
        client.trigger(channel, "e", "through the proxy")
        assert subscriber.event("e", channel)["data"] == "through the proxy"
        assert [(method, target.split("?")[0]) for method, target, _ in proxy.seen] == [
            ("POST", f"http://127.0.0.1:{soketi.port}/apps/{soketi.app_id}/events")
        ]


def test_http_proxy_from_the_environment_is_used(soketi, subscriber, monkeypatch):
    channel = unique("env-proxied-")
    subscriber.subscribe(channel)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{proxy.port}")  # no scheme: http://, as requests does
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with client_for(soketi) as client:
            client.trigger(channel, "e", "env")
        assert subscriber.event("e", channel)["data"] == "env"
        assert len(proxy.seen) == 1 and proxy.seen[0][0] == "POST"


@pytest.mark.parametrize("how", ["no_proxy", "proxy=False"])
def test_no_proxy_and_proxy_false_go_direct(soketi, subscriber, monkeypatch, how):
    channel = unique("direct-")
    subscriber.subscribe(channel)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        if how == "no_proxy":
            monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        options = {"proxy": False} if how == "proxy=False" else {}
        with client_for(soketi, **options) as client:
            assert client.proxy is None
            client.trigger(channel, "e", "direct")
        assert subscriber.event("e", channel)["data"] == "direct"
        assert proxy.seen == []


@pytest.mark.parametrize(
    ("scheme", "host", "environ", "expected"),
    [
        ("https", "api.pusher.com", {"HTTPS_PROXY": "http://p:1"}, "http://p:1"),
        ("http", "api.pusher.com", {"HTTPS_PROXY": "http://p:1"}, None),
        ("http", "api.pusher.com", {"HTTP_PROXY": "http://p:1", "http_proxy": "http://q:2"}, "http://q:2"),
        ("https", "api-eu.pusher.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "pusher.com"}, None),
        ("https", "api.pusher.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
        ("https", "api.pusher.com", {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "other.com"}, "http://p:1"),
    ],
)
def test_proxy_choice_follows_the_environment_like_requests(scheme, host, environ, expected):
    assert proxy_for(scheme, host, 443, None, environ) == expected


def test_an_explicit_proxy_wins_over_the_environment():
    assert (
        proxy_for("https", "h", 443, "http://mine:3128", {"HTTPS_PROXY": "http://env:1"})
        == "http://mine:3128"
    )


def test_requests_style_proxies_option_with_the_requests_backend():
    client = Pusher(
        "1", "k", "s", backend=pusher.requests.RequestsBackend, proxies={"https": "http://p:3128"}
    )
    assert client.proxy == "http://p:3128" and client.transport.proxy.port == 3128


def positional(function) -> list[str]:
    return [
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and name != "self"
    ]


@pytest.mark.parametrize(
    "method",
    [
        name
        for name, member in vars(official.Pusher).items()
        if callable(member) and not name.startswith("_") and name not in ("from_url", "from_env")
    ],
)
def test_every_official_method_takes_its_positional_arguments_in_the_same_order(method):
    theirs = positional(getattr(official.Pusher, method))
    ours = positional(getattr(Pusher, method))
    renamed = {"batch": "events"}  # trigger_batch's list: also accepted as batch=
    assert [renamed.get(name, name) for name in theirs] == ours[: len(theirs)]


def test_already_encoded_plaintext_never_reaches_an_encrypted_channel(soketi, subscriber):
    channel = unique("private-encrypted-encoded-")
    base64_key = base64.b64encode(RAW_MASTER_KEY.encode()).decode()
    with client_for(soketi, encryption_master_key_base64=base64_key) as client:
        with pytest.raises(PusherValueError, match="plaintext would reach Pusher"):
            client.trigger(channel, "e", '{"pin": 1234}', already_encoded=True)
        with pytest.raises(PusherValueError, match="plaintext would reach Pusher"):
            client.trigger_batch([{"channel": channel, "name": "e", "data": "hello"}], True)
        answer = client.authenticate(channel, subscriber.socket_id)
        subscriber.subscribe(channel, answer)
        sealed = encryption.encrypt(channel, '{"pin": 1234}', base64.b64decode(base64_key))
        client.trigger(channel, "sealed", sealed, already_encoded=True)  # encrypted beforehand: sent as it is
    payload = subscriber.event("sealed", channel)["data"]
    assert encryption.decrypt(payload, base64.b64decode(answer["shared_secret"])) == '{"pin": 1234}'
