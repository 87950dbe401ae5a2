"""The app's channel policy: who may subscribe to and publish on which channel.

Register your own patterns in :func:`app_policy` (see :mod:`pusherlib.endpoints.policy`).
What is registered by default:

* publishing: a caller proven by ``PUSH_TOKENS`` or ``PUSH_OIDC_*`` may publish on any
  channel no pattern of yours matches; an anonymous caller may not;
* subscribing: nothing (every private and presence channel is refused);
* with ``DEMO_MODE=1`` only, the demo's rules (:mod:`handlers.demo_auth`).
"""

from __future__ import annotations

from handlers.demo_auth import install_demo_policy
from pusherlib.endpoints import ChannelPolicy, Publication
from settings import Settings


def app_policy(settings: Settings) -> ChannelPolicy:
    """The policy ``/pusher/auth`` and ``POST /push`` share."""
    policy = ChannelPolicy()
    if settings.demo_mode:
        install_demo_policy(policy)
    policy.publish_default(proven_callers_publish)
    return policy


def proven_callers_publish(publication: Publication) -> bool:
    """The default publish rule: a service that proved itself publishes; nobody else does."""
    return publication.caller is not None
