"""Who is calling ``POST /push``: ``Authorization: Bearer`` with one of ``PUSH_TOKENS``
(compared in constant time) or a Google OIDC token for ``PUSH_OIDC_*``; no header is an
anonymous caller, a header that proves nothing is refused.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from pusherlib.endpoints import Caller

from . import oidc


class PublisherRefused(Exception):
    """The request's credentials prove nothing: ``status`` 401 or 403, ``reason`` (never the
    credential itself)."""

    def __init__(self, reason: str, status: int = 401):
        super().__init__(reason)
        self.status = status


class Publishers:
    """Identifies callers from ``tokens`` (``(name, token)`` pairs) and, when given,
    ``verifier`` with the ``service_accounts`` it accepts."""

    def __init__(
        self,
        tokens: Iterable[tuple[str, str]],
        verifier: oidc.OidcVerifier | None = None,
        service_accounts: frozenset[str] = frozenset(),
    ):
        self._tokens = tuple((name, token.encode("utf-8")) for name, token in tokens)
        self._verifier, self._service_accounts = verifier, service_accounts

    def identify(self, authorization: str | None) -> Caller | None:
        """The caller proven by the ``Authorization`` header, ``None`` without one; raises
        :class:`PublisherRefused`, or :class:`~access.oidc.CertsUnavailable` when an OIDC
        token cannot be checked now."""
        if not authorization:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise PublisherRefused("the Authorization header must be: Bearer <token>")
        name = self._token_name(credential)
        if name is not None:
            return Caller("token", name)
        if self._verifier is None or credential.count(".") != 2:
            raise PublisherRefused("the bearer token is not one this server accepts")
        try:
            claims = self._verifier.verify(authorization)
        except oidc.TokenRefused as exc:
            raise PublisherRefused(f"OIDC token refused: {exc}") from None
        email = claims.get("email")
        if email not in self._service_accounts or claims.get("email_verified") is not True:
            raise PublisherRefused("the OIDC token is not one of PUSH_OIDC_SERVICE_ACCOUNTS'", status=403)
        return Caller("oidc", email)

    def token_caller(self, authorization: str | None) -> Caller | None:
        """The caller a ``PUSH_TOKENS`` bearer token proves, else ``None``: a check of the
        header alone (no OIDC token is verified), for the server's admission."""
        scheme, _, credential = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return None
        name = self._token_name(credential.strip())
        return None if name is None else Caller("token", name)

    def _token_name(self, credential: str) -> str | None:
        """The name of the configured token equal to ``credential``; every token is compared."""
        presented = credential.encode("utf-8", "replace")
        found = None
        for name, token in self._tokens:
            if hmac.compare_digest(presented, token) and found is None:
                found = name
        return found
