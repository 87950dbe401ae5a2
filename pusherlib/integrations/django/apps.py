"""The Django app configuration."""

from django.apps import AppConfig


class PusherConfig(AppConfig):
    """``pusherlib.integrations.django``: Pusher's auth and webhook endpoints."""

    name = "pusherlib.integrations.django"
    label = "pusherlib"
    verbose_name = "Pusher Channels"
