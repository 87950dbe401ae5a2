"""Identity-Aware Proxy assertions: proof of a signed-in user off App Engine's ``login:``.

IAP signs every request it lets through with ``x-goog-iap-jwt-assertion``: an ES256 JWT
whose ``aud`` is the protected app (``/projects/NUMBER/apps/PROJECT`` for App Engine,
``/projects/NUMBER/global/backendServices/ID`` behind a load balancer), whose ``iss`` is
``https://cloud.google.com/iap``, signed with one of the keys IAP publishes as a ``{kid:
PEM public key}`` map (``IAP_KEYS_URL``, by default Google's). :class:`IapVerifier` checks
it as :class:`access.oidc.GoogleTokens` checks every Google-signed token (google-auth, the
same key cache): another algorithm (``none``, ``HS256``, ``RS256``), an unknown key, another
audience or issuer, an expired or future token all raise
:class:`~access.oidc.TokenRefused` (403) with a reason that never quotes the assertion.
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
