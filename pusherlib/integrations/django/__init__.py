"""A Django app with the Pusher endpoints: channel auth (batch too), user auth, webhooks.

Setup and routes: docs/pusherlib.md, 'Flask and Django'. Auth routes keep Django's CSRF
protection; webhooks are signed by Pusher and exempt. Deny by default: without
``hooks.authorizer`` every auth request gets 403."""

from __future__ import annotations

from ...endpoints import PusherHooks

#: The app's decisions: register them with ``@hooks.authorizer``, ``@hooks.channel_data``,
#: ``@hooks.user_data``, ``@hooks.on("member_added")``, ``@hooks.webhooks.presence``...
hooks = PusherHooks()


def client():
    """The pusherlib client built from Django's settings (once per process)."""
    from .views import client as built

    return built()


__all__ = ["client", "hooks"]
