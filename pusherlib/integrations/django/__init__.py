"""A Django app with the Pusher endpoints: channel auth (batch too), user auth, webhooks.

    # settings.py
    INSTALLED_APPS = [..., "pusherlib.integrations.django"]
    PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET = "123", "key", "secret"   # or PUSHER_URL

    # urls.py
    urlpatterns = [..., path("pusher/", include("pusherlib.integrations.django.urls"))]

    # anywhere imported at start-up (e.g. your app's apps.py ready())
    from pusherlib.integrations.django import hooks

    @hooks.authorizer
    def may_join(request, channel_name, socket_id):
        return request.user.is_authenticated

The routes are those of the webapp2 and Flask integrations (``auth``, ``user-auth``,
``webhooks``, ``events/<group>``) and every answer comes from the same framework-neutral
core. Channel and user auth keep Django's CSRF protection (pusher-js sends the token with
``channelAuthorization: {headers: {"X-CSRFToken": ...}}``); webhooks are signed by Pusher
and exempt. Deny by default: without an authorizer every auth request gets 403.
"""

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
