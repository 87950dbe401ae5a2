"""The Pusher endpoints' answers, framework-neutral: channel auth (single and batch), user auth
and webhooks, each a :class:`Reply` computed from the request and the app's :class:`PusherHooks`.
The Flask, Django and webapp2 endpoints are thin adapters; no web framework is imported here."""

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
