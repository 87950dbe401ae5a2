"""The demo's rules (``DEMO_MODE=1`` only, refused on a deployment): the user named by the
``X-Demo-User`` header, else the ``user`` cookie, may join private and presence channels
and publish the lobby's message. Never in production: anyone can send a header.
"""

from __future__ import annotations

from typing import Any

import webapp2

from pusherlib import PusherError, validation
from pusherlib.endpoints import ChannelPolicy, Publication, PusherHooks, from_authorizer

USER_COOKIE = "user"
USER_HEADER = "X-Demo-User"
LOBBY_CHANNEL = "presence-lobby"
MESSAGE_EVENT = "message"


def demo_user(request: webapp2.Request) -> str | None:
    """The user named by the ``X-Demo-User`` header (the page's tab), else by the ``user``
    cookie, if it is a valid Pusher user id."""
    name = request.headers.get(USER_HEADER)
    if name is None:
        name = request.cookies.get(USER_COOKIE)
    if not name:
        return None
    try:
        return validation.user_id(name)
    except PusherError:
        return None


def may_join(request: webapp2.Request, channel_name: str, socket_id: str) -> bool:
    """The authorizer: any demo user (header or cookie) joins any private or presence channel."""
    return demo_user(request) is not None


def may_post_message(publication: Publication) -> bool:
    """Any demo user (header or cookie) posts the lobby's ``message`` event (and no other);
    a proven caller posts as on any other channel."""
    if publication.caller is not None:
        return True
    return publication.event == MESSAGE_EVENT and demo_user(publication.request) is not None


def presence_member(request: webapp2.Request, channel_name: str, socket_id: str) -> dict[str, Any]:
    """The presence member: the demo user, named after itself."""
    user = demo_user(request)
    return {"user_id": user, "user_info": {"name": user}}


def signed_in_user(request: webapp2.Request, socket_id: str) -> dict[str, Any] | None:
    """The user ``pusher:signin`` signs in: the demo user, or nobody."""
    user = demo_user(request)
    return {"id": user, "user_info": {"name": user}} if user else None


def install_demo_policy(policy: ChannelPolicy) -> None:
    """Register the demo's subscribe rule (any channel) and its publish rule (the lobby)."""
    policy.subscribe_default(from_authorizer(may_join))
    policy.publish(LOBBY_CHANNEL)(may_post_message)


def install_demo_members(hooks: PusherHooks) -> None:
    """Register the demo's presence member and signed-in user on ``hooks``."""
    hooks.channel_data(presence_member)
    hooks.user_data(signed_in_user)


def install_demo_auth(hooks: PusherHooks) -> None:
    """Everything of the demo on ``hooks``: its channel rules on ``hooks.policy``, its
    presence member and signed-in user."""
    install_demo_policy(hooks.policy)
    install_demo_members(hooks)
