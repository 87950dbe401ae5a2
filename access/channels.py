"""The app's channel policy: who may subscribe to and publish on which channel. By default
a proven publisher may publish on any channel, nobody may subscribe; register your own
patterns in :func:`app_policy` (see :mod:`pusherlib.endpoints.policy`).
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
