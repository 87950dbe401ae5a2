"""Pusher channel auth, user auth and webhooks (everything Flask-Pusher does, and more).

The webapp2 extension is :class:`handlers.pusher_auth.extension.PusherEndpoints`. The
answers come from the framework-free functions exported here, which a Flask or Django view
can call with a :class:`PusherHooks`; importing this package does not import webapp2.
"""

from .channel_auth import Reply, answer_channel_auth, answer_user_auth
from .hooks import WEBHOOK_EVENTS, PusherHooks
from .policy import Caller, ChannelPolicy, Publication, Subscription
from .webhook_receiver import ReplayGuard, receive_webhook

__all__ = [
    "WEBHOOK_EVENTS",
    "Caller",
    "ChannelPolicy",
    "Publication",
    "PusherHooks",
    "ReplayGuard",
    "Reply",
    "Subscription",
    "answer_channel_auth",
    "answer_user_auth",
    "receive_webhook",
]
