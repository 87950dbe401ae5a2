"""The trust boundary: who may publish, subscribe and read the admin pages.

:func:`access_for` builds, from the settings, what the handlers ask: the channel policy
(:mod:`access.channels`), the proof of ``POST /push`` callers (:mod:`access.publishers`),
their rate limit (:mod:`access.rate_limit`) and the proof of administrators
(:mod:`access.admins`, :mod:`access.iap`). The worker's own proof (queue headers, OIDC)
is in :mod:`handlers.worker`.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.pusher_auth.policy import ChannelPolicy
from pushqueue import oidc
from settings import Settings

from .admins import AdminGate
from .channels import app_policy
from .iap import IapKeys, IapVerifier
from .publishers import Publishers
from .rate_limit import RateLimiter


@dataclass(frozen=True)
class Access:
    """The app's trust decisions, one instance per process."""

    policy: ChannelPolicy
    publishers: Publishers
    publish_limit: RateLimiter
    admins: AdminGate


def access_for(settings: Settings) -> Access:
    """The trust decisions ``settings`` configure."""
    publishing = settings.publishers
    verifier = None
    if publishing.oidc_audience is not None:
        certs = oidc.GoogleCerts(settings.oidc_certs_url)
        verifier = oidc.OidcVerifier(publishing.oidc_audience, certs)
    iap = None
    if settings.iap_audience is not None:
        iap = IapVerifier(settings.iap_audience, IapKeys(settings.iap_keys_url))
    return Access(
        policy=app_policy(settings),
        publishers=Publishers(publishing.tokens, verifier, publishing.service_accounts),
        publish_limit=RateLimiter(publishing.rate_per_second, publishing.burst),
        admins=AdminGate(
            app_engine=settings.app_engine, local_development=settings.local_development, iap=iap
        ),
    )
