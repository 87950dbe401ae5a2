"""Google's side of signed tokens: keys made here, published as Google publishes them.

:class:`GoogleKeysServer` serves, on a free port, the four documents Google serves: the
ID-token certificates as a ``{kid: PEM certificate}`` map (``/oauth2/v1/certs``) and as a
JWK set (``/oauth2/v3/certs``), IAP's public keys as a ``{kid: PEM public key}`` map
(``/iap/verify/public_key``) and as a JWK set (``/iap/verify/public_key-jwk``), with
``Cache-Control: max-age``. A test makes it fail (``status``) or hang (``delay``) and
counts its ``fetches`` (requests, any path). Tokens are signed with google-auth's signers, as Google signs.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from .processes import free_port

ID_TOKEN_CERTS = "/oauth2/v1/certs"
ID_TOKEN_JWKS = "/oauth2/v3/certs"
IAP_KEYS = "/iap/verify/public_key"
IAP_JWKS = "/iap/verify/public_key-jwk"


def _b64(number: int, size: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(size, "big")).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """An RSA key with its self-signed certificate, as Google signs ID tokens, under ``kid``."""

    kid: str
    private_key: rsa.RSAPrivateKey
    pem: str  # the certificate, as /oauth2/v1/certs publishes it

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        return cls(kid, key, certificate.public_bytes(serialization.Encoding.PEM).decode())

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        n = _b64(numbers.n, (numbers.n.bit_length() + 7) // 8)
        return {"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"}

    def sign(self, claims: dict[str, object], kid: str | None = None, alg: str | None = None) -> str:
        """``claims`` signed as Google signs (``kid=""`` leaves the key id out, ``alg``
        overrides the header's algorithm, the signature staying RS256)."""
        signer = crypt.RSASigner(self.private_key, key_id=self.kid if kid is None else kid or None)
        return jwt.encode(signer, claims, header={"alg": alg} if alg else None).decode()


@dataclass(frozen=True)
class IapKey:
    """A P-256 key, as IAP signs its assertions (ES256), under ``kid``."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, kid: str) -> IapKey:
        return cls(kid, ec.generate_private_key(ec.SECP256R1()))

    @property
    def pem(self) -> str:
        """The public key, as /iap/verify/public_key publishes it."""
        public = self.private_key.public_key()
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        x, y = _b64(numbers.x, 32), _b64(numbers.y, 32)
        return {"kid": self.kid, "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "x": x, "y": y}

    def sign(self, claims: dict[str, object]) -> str:
        return jwt.encode(crypt.EsSigner(self.private_key, key_id=self.kid), claims).decode()


def hs256_forgery(claims: dict[str, object], kid: str, secret: str) -> str:
    """``claims`` signed with HMAC-SHA256 using a published key (``secret``, its PEM) as the
    secret: algorithm confusion, what a verifier trusting the header's ``alg`` accepts."""

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    signed = header + b"." + part(json.dumps(claims).encode())
    return (signed + b"." + part(hmac.new(secret.encode(), signed, hashlib.sha256).digest())).decode()


@dataclass
class GoogleKeysServer:
    """Google's key documents for ``id_token_keys`` and ``iap_keys`` (module docstring).

    ``status`` other than 200 answers that status; ``delay`` seconds pass before answering
    (a hang, for a client with a shorter timeout); ``fetches`` counts the requests."""

    id_token_keys: list[SigningKey] = field(default_factory=list)
    iap_keys: list[IapKey] = field(default_factory=list)
    cache_control: str = "public, max-age=600"
    status: int = 200
    delay: float = 0.0
    fetches: int = 0

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str = ID_TOKEN_CERTS) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def document(self, path: str) -> dict[str, object] | None:
        """What Google publishes at ``path``, ``None`` for another path."""
        documents = {
            ID_TOKEN_CERTS: lambda: {key.kid: key.pem for key in self.id_token_keys},
            ID_TOKEN_JWKS: lambda: {"keys": [key.jwk() for key in self.id_token_keys]},
            IAP_KEYS: lambda: {key.kid: key.pem for key in self.iap_keys},
            IAP_JWKS: lambda: {"keys": [key.jwk() for key in self.iap_keys]},
        }
        make = documents.get(path)
        return None if make is None else make()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                time.sleep(server.delay)
                document = server.document(self.path)
                status = 404 if document is None else server.status
                body = json.dumps(document if status == 200 else {"error": "unavailable"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", server.cache_control)
                self.send_header("Content-Length", str(len(body)))
                with contextlib.suppress(ConnectionError):  # a client that gave up waiting
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        return Handler

    def __enter__(self) -> GoogleKeysServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
