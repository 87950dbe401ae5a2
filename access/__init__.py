"""The trust boundary: who may publish, subscribe and read the admin pages.
:func:`access_for` builds what the handlers ask from the settings; nothing here imports
the handlers (the app passes the demo's rules in).
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
class PublishCheck:
    """Who asks to publish (``key``: a token's name, a service account, or an anonymous
    caller's address; empty when the credentials prove nothing) and, if refused, why."""

    key: str
    refusal: PublishRefusal | None = None


PROOF_HINT = "send Authorization: Bearer <token> with a token of PUSH_TOKENS (make dev prints its local one)"


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
    ) -> PublishCheck:
        """Who the caller proven by ``authorization`` is, and why it may not publish ``event``
        on ``channel`` now, if it may not (the policy refuses, or its rate has no room)."""
        try:
            caller = self.publishers.identify(authorization)
        except PublisherRefused as exc:
            return PublishCheck("", PublishRefusal(exc.status, str(exc)))
        except oidc.CertsUnavailable:
            return PublishCheck("", PublishRefusal(503, "the OIDC token cannot be checked now"))
        key = str(caller) if caller else f"anonymous:{client_address(request, app_engine=self.app_engine)}"
        decision = self.policy.may_publish(Publication(request, channel, event, caller))
        if not decision.allowed:
            reason = f"no channel rule lets {caller or 'an anonymous caller'} publish here ({decision.rule})"
            if caller is None:
                reason += f"; {PROOF_HINT}"
            return PublishCheck(key, PublishRefusal(403, reason, caller))
        wait = self.publish_limit.wait(key)
        if wait is not None:
            reason = f"too many events from {key}: retry in {wait} s"
            return PublishCheck(key, PublishRefusal(429, reason, caller, wait))
        return PublishCheck(key)


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
