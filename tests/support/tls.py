"""soketi serving TLS with a certificate of a CA made here, a subscriber over ``wss://``, and
a client for it. The fixtures are imported by the test modules that use them."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pusherlib import HTTPTransport, Pusher
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber


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
    """A client of the TLS soketi through ``transport``, naming it ``host``."""
    return Pusher(server.app_id, server.key, server.secret, host=host, port=server.port, transport=transport)
