"""Identity-Aware Proxy assertions: proof of a signed-in user off App Engine's ``login:``.

IAP signs every request it lets through with ``x-goog-iap-jwt-assertion``: an ES256 JWT
whose ``aud`` is the protected app (``/projects/NUMBER/apps/PROJECT`` for App Engine,
``/projects/NUMBER/global/backendServices/ID`` behind a load balancer), whose ``iss`` is
``https://cloud.google.com/iap``, signed with one of the keys published as a JWK set
(``IAP_KEYS_URL``, by default Google's). :class:`IapVerifier` accepts nothing else: another
algorithm (``none`` included), an unknown key, another audience or issuer, an expired or
future token all raise :class:`~pushqueue.oidc.TokenRefused` with a reason that never
quotes the assertion. The keys are fetched and cached as :class:`pushqueue.oidc.GoogleCerts`
does (same bounds, same early refetch for a rotated key).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from pushqueue.oidc import CLOCK_SKEW, MAX_CERTS_BYTES, MAX_TOKEN_CHARS, GoogleCerts, TokenRefused

ASSERTION_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
_TOKEN_ERRORS = (ValueError, auth_exceptions.GoogleAuthError)


class IapKeys(GoogleCerts):
    """IAP's public keys, from a JWK set (``{"keys": [{"kid", "kty": "EC", "crv": "P-256",
    "x", "y"}, ...]}``), as ``{kid: PEM public key}``."""

    def parse(self, body: bytes) -> Mapping[str, str] | None:
        if len(body) > MAX_CERTS_BYTES:
            return None
        try:
            keys = json.loads(body).get("keys")
        except (ValueError, AttributeError):
            return None
        if not isinstance(keys, list):
            return None
        parsed = dict(filter(None, (_p256_key(key) for key in keys)))
        return parsed or None


class IapVerifier:
    """Accepts an IAP assertion for ``audience``, signed with one of ``keys``."""

    def __init__(self, audience: str, keys: GoogleCerts):
        self.audience, self.keys = audience, keys

    def verify(self, assertion: str | None) -> dict[str, Any]:
        """The assertion's claims (``email``, ``sub``...); raises
        :class:`~pushqueue.oidc.TokenRefused` or :class:`~pushqueue.oidc.CertsUnavailable`."""
        if not assertion:
            raise TokenRefused(f"no {ASSERTION_HEADER} header: the request did not come through IAP", 403)
        if len(assertion) > MAX_TOKEN_CHARS:
            raise TokenRefused("malformed IAP assertion", 403)
        try:
            header = jwt.decode_header(assertion)
        except _TOKEN_ERRORS:
            raise TokenRefused("malformed IAP assertion", 403) from None
        if header.get("alg") != "ES256":
            raise TokenRefused("the IAP assertion must be signed with ES256", 403)
        kid = header.get("kid")
        key = self.keys.certificate(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenRefused("the IAP assertion's signing key is not one of IAP's", 403)
        try:
            claims = dict(jwt.decode(assertion, certs=key, clock_skew_in_seconds=CLOCK_SKEW))
        except _TOKEN_ERRORS:
            raise TokenRefused("the IAP assertion's signature or validity period is wrong", 403) from None
        if claims.get("aud") != self.audience:
            raise TokenRefused("the IAP assertion is for another audience", 403)
        if claims.get("iss") != IAP_ISSUER:
            raise TokenRefused("the IAP assertion was not issued by IAP", 403)
        return claims


def _p256_key(key: object) -> tuple[str, str] | None:
    """``(kid, PEM)`` for a P-256 public key in JWK form, ``None`` for anything else."""
    if not isinstance(key, dict) or key.get("kty") != "EC" or key.get("crv") != "P-256":
        return None
    kid, x, y = key.get("kid"), key.get("x"), key.get("y")
    if not (isinstance(kid, str) and isinstance(x, str) and isinstance(y, str)):
        return None
    try:
        numbers = ec.EllipticCurvePublicNumbers(_b64url_int(x), _b64url_int(y), ec.SECP256R1())
        public_key = numbers.public_key()
    except (ValueError, binascii.Error):  # not base64, or not a point on the curve
        return None
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return kid, pem.decode("ascii")


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")
