"""Checking the OIDC token that Cloud Tasks sends to an HTTP target.

A task created with an ``oidc_token`` reaches its HTTP target with ``Authorization: Bearer
<ID token>``: a JWT that Google signs (RS256) for the task's service account. Outside App
Engine the queue's ``X-CloudTasks-*`` headers prove nothing (anybody can send them); only
Google can make that token. On App Engine targets no token is needed: App Engine strips
``X-AppEngine-*`` headers from outside requests.

:class:`OidcVerifier` accepts a token whose signature verifies against one of Google's
certificates, whose ``aud`` is the configured audience, whose ``iss`` is
``accounts.google.com`` (with or without ``https://``), which is neither expired nor issued
in the future (``CLOCK_SKEW`` seconds of tolerance) and, when a service account is
configured, whose ``email`` is that account with ``email_verified`` true. Anything else
raises :class:`TokenRefused` with a few words saying why (never the token itself): status
401, or 403 for a genuine token of another account.

:class:`GoogleCerts` fetches Google's certificates (``{kid: PEM certificate}``, the v1
format) with ``urllib``, and keeps them as long as the answer's ``Cache-Control: max-age``
says (``DEFAULT_MAX_AGE`` without one, bounded by ``MIN_MAX_AGE``, which ``no-cache`` and
``no-store`` get, and ``MAX_MAX_AGE``).
A token signed with a key it does not know makes it fetch again early (Google has rotated
its keys), at most once per ``refetch_interval`` so that made-up key ids cannot make it
call Google on every request. It is thread-safe: one fetch at a time, the other threads
wait for it. A failed fetch raises :class:`CertsUnavailable`: the worker answers 503 and
the queue tries the task again later.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from . import logs

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW = 30  # seconds
DEFAULT_MAX_AGE = 300.0
MIN_MAX_AGE, MAX_MAX_AGE = 60.0, 86_400.0
MAX_CERTS_BYTES = 256 * 1024
MAX_TOKEN_CHARS = 8192
_MAX_AGE = re.compile(r"max-age=(\d+)")
_TOKEN_ERRORS = (ValueError, auth_exceptions.GoogleAuthError)


class TokenRefused(Exception):
    """The request's token is missing or not acceptable; ``status`` is the HTTP answer."""

    def __init__(self, reason: str, status: int = 401):
        super().__init__(reason)
        self.status = status


class CertsUnavailable(Exception):
    """Google's certificates could not be fetched: the token cannot be checked now."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    certs: Mapping[str, str]
    fetched_at: float
    expires_at: float


class GoogleCerts:
    """Google's token-signing certificates from ``url``, fetched when needed and cached."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        refetch_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url, self.timeout, self.refetch_interval = url, timeout, refetch_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._current: _Fetched | None = None

    def certificate(self, kid: str) -> str | None:
        """The PEM certificate of key ``kid``, or ``None`` when Google has no such key."""
        current = self._current
        if not self._usable(current, kid):
            with self._lock:
                current = self._current
                if not self._usable(current, kid):
                    current = self._current = self._fetch()
        assert current is not None
        return current.certs.get(kid)

    def _usable(self, current: _Fetched | None, kid: str) -> bool:
        """Whether ``current`` may answer for ``kid`` without fetching again."""
        if current is None:
            return False
        now = self._clock()
        if now >= current.expires_at:
            return False
        return kid in current.certs or now - current.fetched_at < self.refetch_interval

    def _fetch(self) -> _Fetched:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read(MAX_CERTS_BYTES + 1)
                cache_control = response.headers.get("Cache-Control", "")
        except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError, timeouts
            raise CertsUnavailable(f"cannot fetch {self.url}: {exc}") from None
        certs = _parse_certs(body)
        if certs is None:
            raise CertsUnavailable(f"{self.url} did not answer a JSON object of PEM certificates")
        max_age = _max_age(cache_control)
        now = self._clock()
        logs.log(logging.INFO, "fetched OIDC certificates", url=self.url, keys=len(certs), max_age=max_age)
        return _Fetched(certs, now, now + max_age)


class OidcVerifier:
    """Accepts ``Authorization: Bearer <token>`` for ``audience`` (and ``service_account``)."""

    def __init__(self, audience: str, certs: GoogleCerts, *, service_account: str | None = None):
        self.audience, self.certs, self.service_account = audience, certs, service_account

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; raises :class:`TokenRefused` or :class:`CertsUnavailable`."""
        token = _bearer_token(authorization)
        try:
            header = jwt.decode_header(token)
        except _TOKEN_ERRORS:
            raise TokenRefused("malformed token") from None
        if header.get("alg") != "RS256":
            raise TokenRefused("the token must be signed with RS256")
        kid = header.get("kid")
        certificate = self.certs.certificate(kid) if isinstance(kid, str) else None
        if certificate is None:
            raise TokenRefused("the token's signing key is not one of Google's")
        try:
            claims = dict(jwt.decode(token, certs=certificate, clock_skew_in_seconds=CLOCK_SKEW))
        except _TOKEN_ERRORS as exc:
            raise TokenRefused(_reason(exc, token)) from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("aud") != self.audience:
            raise TokenRefused("the token is for another audience")
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise TokenRefused("the token was not issued by Google")
        if self.service_account is None:
            return
        if claims.get("email") != self.service_account or claims.get("email_verified") is not True:
            raise TokenRefused("the token is not the queue's service account's", status=403)


def _bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused("an Authorization: Bearer token is required")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused("malformed token")
    return token


def _reason(error: Exception, token: str) -> str:
    """``error``'s message, unless it quotes any part of the token."""
    message = str(error)
    if any(part and part in message for part in token.split(".")):
        return "invalid token"
    return message


def _parse_certs(body: bytes) -> dict[str, str] | None:
    if len(body) > MAX_CERTS_BYTES:
        return None
    try:
        certs = json.loads(body)
    except ValueError:
        return None
    valid = isinstance(certs, dict) and certs and all(isinstance(v, str) for v in certs.values())
    return certs if valid else None


def _max_age(cache_control: str) -> float:
    lowered = cache_control.lower()
    if "no-cache" in lowered or "no-store" in lowered:
        return MIN_MAX_AGE
    found = _MAX_AGE.search(lowered)
    if found is None:
        return DEFAULT_MAX_AGE
    return min(max(float(found.group(1)), MIN_MAX_AGE), MAX_MAX_AGE)
