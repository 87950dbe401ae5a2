"""Identity-Aware Proxy assertions (``x-goog-iap-jwt-assertion``): proof of a signed-in
user off App Engine's ``login:``, checked as :mod:`access.oidc` checks every Google token.
"""

from __future__ import annotations

from typing import Any

from .oidc import GoogleCerts, GoogleTokens, TokenRefused

ASSERTION_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"


class IapVerifier:
    """Accepts an IAP assertion for ``audience``, signed with one of ``keys``."""

    def __init__(self, audience: str, keys: GoogleCerts):
        self.audience, self.keys = audience, keys
        issuers = frozenset({IAP_ISSUER})
        self._tokens = GoogleTokens(keys, "ES256", audience, issuers, "IAP", name="IAP assertion", status=403)

    def verify(self, assertion: str | None) -> dict[str, Any]:
        """The assertion's claims (``email``, ``sub``...); raises
        :class:`~access.oidc.TokenRefused` or :class:`~access.oidc.CertsUnavailable`."""
        if not assertion:
            raise TokenRefused(f"no {ASSERTION_HEADER} header: the request did not come through IAP", 403)
        return self._tokens.claims(assertion)
