"""The default transport: kept-alive pooled connections, stale ones retried once, chunked
answers, verified TLS (soketi serving a certificate made here) and an HTTP proxy."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import select
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pusherlib import HTTPTransport, Pusher, PusherConnectionError, PusherValueError
from tests.support.fault_server import Close, FaultServer, Reply, Reset
from tests.support.soketi import Soketi, unique
from tests.support.subscriber import Subscriber


@pytest.fixture
def fault():
    with FaultServer(default=Reply.json(200, {"ok": True})) as server:
        yield server


# -- keep-alive and stale connections ---------------------------------------------------------


def test_connection_is_kept_alive(fault):
    client = Pusher.from_url(fault.pusher_url)
    for _ in range(3):
        assert client.trigger("c", "e", "x") == {"ok": True}
    assert (fault.request_count, fault.connections) == (3, 1)


def test_chunked_answers(fault):
    fault.add(Reply.json(200, {"chunked": "yes" * 10}, chunked=True), Reply.json(200, {"n": 2}, chunked=True))
    client = Pusher.from_url(fault.pusher_url)
    assert client.trigger("c", "e", "x") == {"chunked": "yes" * 10}
    assert client.trigger("c", "e", "x") == {"n": 2}
    assert fault.connections == 1  # the whole chunked body and its trailer were read


def test_server_closing_an_idle_connection(fault):
    fault.add(Reply.json(200, {"n": 1}, close_after=True))
    client = Pusher.from_url(fault.pusher_url)
    assert client.trigger("c", "e", "x") == {"n": 1}
    assert client.trigger("c", "e", "x") == {"ok": True}
    assert (fault.request_count, fault.connections) == (2, 2)


@pytest.mark.parametrize("failure", [Close(), Reset()], ids=["closed", "reset"])
def test_stale_pooled_connection_is_retried_once(fault, failure):
    fault.add(Reply.json(200, {"n": 1}), failure, Reply.json(200, {"n": 2}))
    client = Pusher.from_url(fault.pusher_url)
    assert client.trigger("c", "e", "x") == {"n": 1}
    assert client.trigger("c", "e", "x") == {"n": 2}
    assert (fault.request_count, fault.connections) == (3, 2)
    assert fault.requests[1].body == fault.requests[2].body  # the same request, sent again


def test_stale_connection_retry_happens_only_once(fault):
    fault.add(Reply.json(200, {"n": 1}), Close(), Close())
    client = Pusher.from_url(fault.pusher_url)
    client.trigger("c", "e", "x")
    with pytest.raises(PusherConnectionError):
        client.trigger("c", "e", "x")
    assert fault.request_count == 3


def test_one_client_shared_by_threads(pusher, subscriber):
    channel = unique("threads-")
    subscriber.subscribe(channel)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: pusher.trigger(channel, "n", str(i)), range(120)))
    assert all(isinstance(answer, dict) for answer in answers)
    received = {subscriber.event("n", channel)["data"] for _ in range(120)}
    assert received == {str(i) for i in range(120)}


# -- TLS -------------------------------------------------------------------------------------


def _certificate(subject: str, issuer_key, public_key, issuer: x509.Name | None = None, ca: bool = False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_soketi(tmp_path_factory):
    """soketi serving TLS with a certificate of a CA made here; yields it and the CA's PEM path."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("pusherlib test CA", ca_key, ca_key.public_key(), ca=True)
    leaf = _certificate("localhost", ca_key, server_key.public_key(), issuer=ca.subject)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "cert.pem").write_bytes(leaf.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = Soketi(name="soketi-tls")
    server.env.update(
        {"SOKETI_SSL_CERT": str(folder / "cert.pem"), "SOKETI_SSL_KEY": str(folder / "key.pem")}
    )
    with server:
        yield server, folder / "ca.pem"


@pytest.fixture
def tls_subscriber(tls_soketi, monkeypatch):
    server, ca_path = tls_soketi
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_path))  # the websocket client's default trust
    with Subscriber(server.ws_url.replace("ws://", "wss://")) as connection:
        yield connection


def tls_client(server: Soketi, transport: HTTPTransport, host: str = "localhost") -> Pusher:
    return Pusher(server.app_id, server.key, server.secret, host=host, port=server.port, transport=transport)


def test_tls_with_a_trusted_certificate(tls_soketi, tls_subscriber):
    server, ca_path = tls_soketi
    trusted = HTTPTransport(ssl_context=ssl.create_default_context(cafile=str(ca_path)))
    with tls_client(server, trusted) as client:
        tls_subscriber.subscribe("secure")
        for n in range(3):
            client.trigger("secure", "e", {"n": n})
            assert json.loads(tls_subscriber.event("e", "secure")["data"]) == {"n": n}
        assert "secure" in client.channels_info()["channels"]


def test_tls_certificate_not_trusted_by_default(tls_soketi):
    server, _ = tls_soketi
    with tls_client(server, HTTPTransport()) as client, pytest.raises(PusherConnectionError) as caught:
        client.trigger("secure", "e", "x")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert (caught.value.status, caught.value.retryable) == (None, True)


def test_tls_host_name_is_checked(tls_soketi):
    server, ca_path = tls_soketi
    trusted = HTTPTransport(ssl_context=ssl.create_default_context(cafile=str(ca_path)))
    with tls_client(server, trusted, host="127.0.0.2") as client, pytest.raises(PusherConnectionError):
        client.trigger("secure", "e", "x")


# -- HTTP proxy ---------------------------------------------------------------------------------


class ForwardProxy:
    """A tiny HTTP proxy: absolute-form requests for ``http://``, ``CONNECT`` tunnels for
    ``https://``. Records ``(method, target, Proxy-Authorization)`` of each request."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.seen: list[tuple[str, str, str | None]] = []
        self._stopping = threading.Event()

    def __enter__(self) -> ForwardProxy:
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, client.makefile("rb") as rfile:
            method, target, _ = rfile.readline().decode("latin-1").split(" ", 2)
            headers = {}
            while (line := rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            self.seen.append((method, target, headers.pop("proxy-authorization", None)))
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                with socket.create_connection((host, int(port))) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self._pipe(client, upstream)
                return
            body = rfile.read(int(headers.get("content-length", 0)))
            url = urlsplit(target)
            upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
            upstream.request(method, f"{url.path}?{url.query}", body, headers)
            answer = upstream.getresponse()
            content = answer.read()
            upstream.close()
            client.sendall(
                f"HTTP/1.1 {answer.status} {answer.reason}\r\nContent-Length: {len(content)}\r\n"
                f"Connection: close\r\n\r\n".encode("latin-1")
                + content
            )

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        while not self._stopping.is_set():
            readable, _, _ = select.select([a, b], [], [], 0.2)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)


def test_http_through_a_proxy(soketi, subscriber):
    with ForwardProxy() as proxy:
        transport = HTTPTransport(proxy=f"http://user:p%40ss@127.0.0.1:{proxy.port}")
        with Pusher.from_url(soketi.url, transport=transport) as client:
            subscriber.subscribe("proxied")
            client.trigger("proxied", "e", "via proxy")
            assert subscriber.event("e", "proxied")["data"] == "via proxy"
            client.trigger("proxied", "e", "again")
            assert subscriber.event("e", "proxied")["data"] == "again"
    method, target, authorization = proxy.seen[0]
    assert method == "POST"
    assert target.startswith(f"http://127.0.0.1:{soketi.port}/apps/{soketi.app_id}/events?")
    assert authorization == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert len(proxy.seen) == 2


def test_https_through_a_proxy_tunnel(tls_soketi, tls_subscriber):
    server, ca_path = tls_soketi
    with ForwardProxy() as proxy:
        transport = HTTPTransport(
            proxy=f"http://127.0.0.1:{proxy.port}",
            ssl_context=ssl.create_default_context(cafile=str(ca_path)),
        )
        with tls_client(server, transport) as client:
            tls_subscriber.subscribe("tunnelled")
            client.trigger("tunnelled", "e", "through CONNECT")
            assert tls_subscriber.event("e", "tunnelled")["data"] == "through CONNECT"
    assert proxy.seen == [("CONNECT", f"localhost:{server.port}", None)]


def test_proxy_url_must_be_http():
    with pytest.raises(PusherValueError, match="proxy must be an http://host:port URL"):
        HTTPTransport(proxy="socks5://127.0.0.1:1080")
