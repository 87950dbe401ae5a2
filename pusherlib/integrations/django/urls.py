"""``path("pusher/", include("pusherlib.integrations.django.urls"))``."""

from django.urls import path, re_path

from ...endpoints import GROUP_ROUTES
from . import views

app_name = "pusher"
urlpatterns = [
    path("auth", views.channel_auth, name="auth"),
    path("user-auth", views.user_auth, name="user-auth"),
    path("webhooks", views.webhook, name="webhooks"),
    re_path(r"^events/(?P<group>" + "|".join(GROUP_ROUTES) + r")$", views.webhook, name="events"),
]
