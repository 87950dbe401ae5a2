"""Tokens Google signs: Cloud Tasks' OIDC ID tokens (and IAP's assertions, :mod:`access.iap`),
checked with google-auth against Google's published ``{kid: PEM}`` keys, cached, served
while a refresh fails, one fetch at a time. Why: [docs/security.md](../docs/security.md).
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

from pushqueue import logs

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
CLOCK_SKEW = 30  # seconds
DEFAULT_MAX_AGE = 300.0
MIN_MAX_AGE, MAX_MAX_AGE = 60.0, 86_400.0
STALE_GRACE = 86_400.0  # how long past max-age cached keys serve while refreshes fail
RETRY_BACKOFF = (2.0, 300.0)  # the wait after a failed fetch: first, doubling up to the last
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
    """Google's keys could not be fetched and none are cached: the token cannot be checked now."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    certs: Mapping[str, str]
    fetched_at: float
    expires_at: float


class GoogleCerts:
    """Google's signing keys from ``url`` (``{kid: PEM certificate or public key}``), fetched
    when needed and cached (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        refetch_interval: float = 30.0,
        stale_grace: float = STALE_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url, self.timeout, self.refetch_interval = url, timeout, refetch_interval
        self.stale_grace = stale_grace
        self._clock = clock
        self._lock = threading.Lock()  # held by the one fetch under way
        self._current: _Fetched | None = None
        self._failures, self._retry_at, self._failure = 0, 0.0, ""

    def certs(self, kid: str) -> Mapping[str, str]:
        """The keys to check a token signed with key ``kid`` against (``kid`` may be absent
        from them: Google has no such key); raises :class:`CertsUnavailable`."""
        current, now = self._current, self._clock()
        if current is not None and not self._due(current, kid, now):
            return current.certs
        if self._serves(current, kid, now):  # others use these keys while one refreshes
            if now >= self._retry_at and self._lock.acquire(blocking=False):
                try:
                    self._refresh(now)
                finally:
                    self._lock.release()
            return (self._current or current).certs
        if not self._lock.acquire(timeout=self.timeout):
            return self._cached_or_raise(f"another fetch of {self.url} is under way")
        try:
            current, now = self._current, self._clock()
            if current is not None and not self._due(current, kid, now):
                return current.certs  # fetched while this request waited
            if now < self._retry_at:
                return self._cached_or_raise(self._failure)
            self._refresh(now)
            return self._cached_or_raise(self._failure)
        finally:
            self._lock.release()

    def _due(self, current: _Fetched, kid: str, now: float) -> bool:
        """Whether to fetch again: past max-age, or ``kid`` unknown (Google may have rotated
        its keys) and the last fetch older than ``refetch_interval``."""
        if now >= current.expires_at:
            return True
        return kid not in current.certs and now - current.fetched_at >= self.refetch_interval

    def _serves(self, current: _Fetched | None, kid: str, now: float) -> bool:
        """Whether the cached keys may still answer for ``kid`` (past max-age, within the grace)."""
        return current is not None and kid in current.certs and now < current.expires_at + self.stale_grace

    def _cached_or_raise(self, reason: str) -> Mapping[str, str]:
        """The cached keys if still within the grace (a token of another key is then
        refused), else :class:`CertsUnavailable`."""
        current = self._current
        if current is None or self._clock() >= current.expires_at + self.stale_grace:
            raise CertsUnavailable(reason)
        return current.certs

    def _refresh(self, now: float) -> None:
        """Fetch (the caller holds the lock); after a failure, back off and keep the cache."""
        try:
            self._current = self._fetch()
        except CertsUnavailable as exc:
            error = str(exc)
            self._failures += 1
            backoff = min(RETRY_BACKOFF[0] * 2 ** (self._failures - 1), RETRY_BACKOFF[1])
            self._retry_at, self._failure = now + backoff, f"{error} (next try in {backoff:g} s)"
            cached = self._current is not None
            logs.log(logging.WARNING, "cannot fetch Google's keys", url=self.url, error=error, cached=cached)
        else:
            self._failures, self._retry_at, self._failure = 0, 0.0, ""

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
            raise CertsUnavailable(f"{self.url} did not answer a JSON object of PEM keys ({{kid: PEM}})")
        max_age = _max_age(cache_control)
        now = self._clock()
        logs.log(logging.INFO, "fetched Google's keys", url=self.url, keys=len(certs), max_age=max_age)
        return _Fetched(certs, now, now + max_age)


@dataclass(frozen=True)
class GoogleTokens:
    """One kind of Google-signed JWT: signed with ``algorithm`` by one of ``keys``, for
    ``audience``, from one of ``issuers`` (``issuer`` names them in a refusal); ``name``
    names the token in a refusal, whose status is ``status``."""

    keys: GoogleCerts
    algorithm: str
    audience: str
    issuers: frozenset[str]
    issuer: str
    name: str = "token"
    status: int = 401

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims; raises :class:`TokenRefused` or :class:`CertsUnavailable`."""
        if len(token) > MAX_TOKEN_CHARS:
            raise self._refused(f"malformed {self.name}")
        try:
            header = jwt.decode_header(token)
        except _TOKEN_ERRORS:
            raise self._refused(f"malformed {self.name}") from None
        if header.get("alg") != self.algorithm:
            raise self._refused(f"the {self.name} must be signed with {self.algorithm}")
        kid = header.get("kid")
        certs = self.keys.certs(kid) if isinstance(kid, str) else {}
        if kid not in certs:
            raise self._refused(f"the {self.name}'s signing key is not one of {self.issuer}'s")
        try:
            claims = dict(jwt.decode(token, certs=certs, clock_skew_in_seconds=CLOCK_SKEW))
        except _TOKEN_ERRORS as exc:
            raise self._refused(_reason(exc, token)) from None
        if claims.get("aud") != self.audience:
            raise self._refused(f"the {self.name} is for another audience")
        if claims.get("iss") not in self.issuers:
            raise self._refused(f"the {self.name} was not issued by {self.issuer}")
        return claims

    def _refused(self, reason: str) -> TokenRefused:
        return TokenRefused(reason, self.status)


class OidcVerifier:
    """Accepts ``Authorization: Bearer <token>``: a Google ID token for ``audience`` (and,
    when given, ``service_account``'s: a genuine token of another account gets 403)."""

    def __init__(self, audience: str, certs: GoogleCerts, *, service_account: str | None = None):
        self.audience, self.certs, self.service_account = audience, certs, service_account
        self._tokens = GoogleTokens(certs, "RS256", audience, GOOGLE_ISSUERS, "Google")

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; raises :class:`TokenRefused` or :class:`CertsUnavailable`."""
        claims = self._tokens.claims(_bearer_token(authorization))
        if self.service_account is None:
            return claims
        if claims.get("email") != self.service_account or claims.get("email_verified") is not True:
            raise TokenRefused("the token is not the queue's service account's", status=403)
        return claims


def _bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused("an Authorization: Bearer token is required")
    return token.strip()


def _reason(error: Exception, token: str) -> str:
    """``error``'s message, unless it quotes any part of the token."""
    message = str(error)
    if any(part and part in message for part in token.split(".")):
        return "invalid token"
    return message


def _parse_certs(body: bytes) -> dict[str, str] | None:
    """The ``{kid: PEM}`` map in a fetched ``body``, or ``None`` (a JWK set is not one)."""
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
