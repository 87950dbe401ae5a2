"""The demo's authorizer, installed only when ``DEMO_MODE=1`` (``settings.demo_mode``).

The user is the value of the ``user`` cookie the demo page sets. That user may join every
private- and presence- channel, is the presence member (user id = the name) and is the
user that ``pusher:signin`` signs in. Without the cookie every request is refused (403).
Never install this in production: anyone can set a cookie.
"""

from __future__ import annotations

from typing import Any

import webapp2

from handlers.pusher_auth import PusherHooks
from pusherlib import PusherError, validation

USER_COOKIE = "user"


def demo_user(request: webapp2.Request) -> str | None:
    """The user named by the ``user`` cookie, if it is a valid Pusher user id."""
    name = request.cookies.get(USER_COOKIE)
    if not name:
        return None
    try:
        return validation.user_id(name)
    except PusherError:
        return None


def may_join(request: webapp2.Request, channel_name: str, socket_id: str) -> bool:
    """The authorizer: anyone with a valid ``user`` cookie joins any private or presence channel."""
    return demo_user(request) is not None


def presence_member(request: webapp2.Request, channel_name: str, socket_id: str) -> dict[str, Any]:
    """The presence member: the cookie's user, named after itself."""
    user = demo_user(request)
    return {"user_id": user, "user_info": {"name": user}}


def signed_in_user(request: webapp2.Request, socket_id: str) -> dict[str, Any] | None:
    """The user ``pusher:signin`` signs in: the cookie's, or nobody."""
    user = demo_user(request)
    return {"id": user, "user_info": {"name": user}} if user else None


def install_demo_auth(hooks: PusherHooks) -> None:
    """Register the demo's authorizer, presence member and signed-in user on ``hooks``."""
    hooks.authorizer(may_join)
    hooks.channel_data(presence_member)
    hooks.user_data(signed_in_user)
