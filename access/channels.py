"""The app's channel policy: who may subscribe to and publish on which channel.

Register your own patterns in :func:`app_policy` (see :mod:`pusherlib.endpoints.policy`).
What is registered by default:

* publishing: a caller proven by ``PUSH_TOKENS`` or ``PUSH_OIDC_*`` may publish on any
  channel no pattern of yours matches; an anonymous caller may not;
* subscribing: nothing (every private and presence channel is refused);
* what the app installs on top (with ``DEMO_MODE=1`` only, the demo's rules: see
  :func:`handlers.wiring.access_for`).
"""

from __future__ import annotations

from collections.abc import Callable

from pusherlib.endpoints import ChannelPolicy, Publication


def app_policy(*installs: Callable[[ChannelPolicy], None]) -> ChannelPolicy:
    """The policy ``/pusher/auth`` and ``POST /push`` share, with the rules each of
    ``installs`` registers (before the default publish rule)."""
    policy = ChannelPolicy()
    for install in installs:
        install(policy)
    policy.publish_default(proven_callers_publish)
    return policy


def proven_callers_publish(publication: Publication) -> bool:
    """The default publish rule: a service that proved itself publishes; nobody else does."""
    return publication.caller is not None
