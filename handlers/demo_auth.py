"""The demo's rules, installed only when ``DEMO_MODE=1`` (``settings.demo_mode``, which is
refused on a deployment).

The user is the value of the ``X-Demo-User`` header, which the demo page keeps per browser
tab (two tabs of one browser are two users), else of the ``user`` cookie the demo page sets
(the browser's last chosen name: curl, or a client without the header). That user may join
every private- and presence- channel, may publish the lobby's ``message`` event (the demo
page posts it to ``POST /push/presence-lobby/message`` without a token), is the presence
member (user id = the name) and is the user that ``pusher:signin`` signs in. Without either
every request is refused (403), and so is an invalid header (the cookie does not stand in
for it). Never install this in production: anyone can send a header or set a cookie.
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
