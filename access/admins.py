"""Who is an administrator (``/admin/``, ``/tasks/recent``): App Engine's admin header on
App Engine, an IAP assertion with ``IAP_AUDIENCE``, the header unverified only with the
local-development switch. Anywhere else the header proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import oidc
from .iap import ASSERTION_HEADER, IapVerifier

ADMIN_HEADER = "X-AppEngine-User-Is-Admin"  # "1" for a signed-in admin; App Engine strips it from others


@dataclass(frozen=True)
class AdminCheck:
    """Whether the request is an admin's, who (for the logs) or why not, and the status of
    a refusal (403; 503 when IAP's keys cannot be fetched)."""

    allowed: bool
    detail: str
    status: int = 403


class AdminGate:
    """Decides whether a request proves an administrator (see the module docstring)."""

    def __init__(self, *, app_engine: bool, local_development: bool, iap: IapVerifier | None = None):
        self.app_engine, self.local_development, self.iap = app_engine, local_development, iap

    def check(self, headers: Any) -> AdminCheck:
        """Check the request's ``headers`` (a case-insensitive mapping)."""
        header_says_admin = headers.get(ADMIN_HEADER) == "1"
        if self.app_engine and header_says_admin:
            return AdminCheck(True, "App Engine admin")
        if self.iap is not None and headers.get(ASSERTION_HEADER):
            try:
                claims = self.iap.verify(headers.get(ASSERTION_HEADER))
            except oidc.TokenRefused as exc:
                return AdminCheck(False, str(exc))
            except oidc.CertsUnavailable:
                return AdminCheck(False, "IAP's keys cannot be fetched now", 503)
            return AdminCheck(True, f"IAP user {claims.get('email') or claims.get('sub')}")
        if self.local_development and header_says_admin:
            return AdminCheck(True, "local development (unverified header)")
        if header_says_admin:
            return AdminCheck(False, f"{ADMIN_HEADER} proves nothing off App Engine (GAE_ENV=standard)")
        return AdminCheck(False, "administrators only: sign in (App Engine login: admin, or IAP)")
