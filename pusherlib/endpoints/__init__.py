"""The Pusher endpoints' answers, framework-neutral: channel auth (single and pusher-js-auth
batch), user auth (``pusher:signin``) and webhooks (checked, replays refused, dispatched).

Each answer is a function of the request's fields or body and a :class:`PusherHooks` (the
app's decisions: its :class:`ChannelPolicy`, presence member, signed-in user and webhook
handlers), giving a :class:`Reply`. The Flask and Django integrations
(:mod:`pusherlib.integrations`) and the App Engine app's webapp2 endpoints are thin
adapters around them. Importing this package imports no web framework.
"""

from .channel_auth import answer_channel_auth, answer_user_auth
from .hooks import GROUP_ROUTES, WEBHOOK_EVENTS, PusherHooks
from .policy import Caller, ChannelPolicy, Publication, Subscription, from_authorizer
from .replies import DEFAULT_MAX_BODY_BYTES, Reply, refusal, refusal_json, reply_json
from .webhook_receiver import ReplayGuard, ReplayStore, ReplayStoreUnavailable, receive_webhook

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "GROUP_ROUTES",
    "WEBHOOK_EVENTS",
    "Caller",
    "ChannelPolicy",
    "Publication",
    "PusherHooks",
    "ReplayGuard",
    "ReplayStore",
    "ReplayStoreUnavailable",
    "Reply",
    "Subscription",
    "answer_channel_auth",
    "answer_user_auth",
    "from_authorizer",
    "receive_webhook",
    "refusal",
    "refusal_json",
    "reply_json",
]
