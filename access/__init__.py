"""The trust boundary: who may publish, subscribe and read the admin pages.

:func:`access_for` builds, from the settings, what the handlers ask: the channel policy
(:mod:`access.channels`), the proof of ``POST /push`` callers (:mod:`access.publishers`),
their rate limit (:mod:`access.rate_limit`) and the proof of administrators
(:mod:`access.admins`, :mod:`access.iap`), and the check of the Google-signed tokens
they and the worker accept (:mod:`access.oidc`). The worker's own proof (queue headers,
OIDC) is in :mod:`handlers.worker`. Nothing here imports the handlers: the app passes
what it adds (the demo's channel rules) to :func:`access_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pusherlib.endpoints import Caller, ChannelPolicy, Publication
from settings import Settings

from . import oidc
from .admins import AdminGate
from .channels import app_policy
from .iap import IapVerifier
from .publishers import PublisherRefused, Publishers
from .rate_limit import RateLimiter, client_address


@dataclass(frozen=True)
class PublishRefusal:
    """Why a publish request is refused: the HTTP ``status`` (401, 403, 429 or 503), a
    ``reason`` that never quotes a credential, the ``caller`` if proven, and for 429 the
    seconds to wait."""

    status: int
    reason: str
    caller: Caller | None = None
    retry_after: int | None = None


@dataclass(frozen=True)
class Access:
    """The app's trust decisions, one instance per process."""

    policy: ChannelPolicy
    publishers: Publishers
    publish_limit: RateLimiter
    admins: AdminGate
    app_engine: bool = False  # GAE_ENV=standard: anonymous callers known by App Engine's client address

    def check_publish(
        self, request: Any, authorization: str | None, channel: str, event: str
    ) -> PublishRefusal | None:
        """``None`` when the caller proven by ``authorization`` may publish ``event`` on
        ``channel`` now (the policy allows it and the caller's rate has room), else why not."""
        try:
            caller = self.publishers.identify(authorization)
        except PublisherRefused as exc:
            return PublishRefusal(exc.status, str(exc))
        except oidc.CertsUnavailable:
            return PublishRefusal(503, "the OIDC token cannot be checked now")
        decision = self.policy.may_publish(Publication(request, channel, event, caller))
        if not decision.allowed:
            who = caller or "an anonymous caller"
            return PublishRefusal(403, f"no channel rule lets {who} publish here ({decision.rule})", caller)
        key = str(caller) if caller else f"anonymous:{client_address(request, app_engine=self.app_engine)}"
        wait = self.publish_limit.wait(key)
        if wait is not None:
            return PublishRefusal(429, f"too many events from {key}: retry in {wait} s", caller, wait)
        return None


def access_for(settings: Settings, policy: ChannelPolicy | None = None) -> Access:
    """The trust decisions ``settings`` configure, with ``policy`` (by default
    :func:`~access.channels.app_policy`'s)."""
    publishing = settings.publishers
    verifier = None
    if publishing.oidc_audience is not None:
        certs = oidc.GoogleCerts(settings.oidc_certs_url)
        verifier = oidc.OidcVerifier(publishing.oidc_audience, certs)
    iap = None
    if settings.iap_audience is not None:
        iap = IapVerifier(settings.iap_audience, oidc.GoogleCerts(settings.iap_keys_url))
    return Access(
        policy=app_policy() if policy is None else policy,
        publishers=Publishers(publishing.tokens, verifier, publishing.service_accounts),
        publish_limit=RateLimiter(publishing.rate_per_second, publishing.burst),
        admins=AdminGate(
            app_engine=settings.app_engine_standard, local_development=settings.local_development, iap=iap
        ),
        app_engine=settings.app_engine_standard,
    )
