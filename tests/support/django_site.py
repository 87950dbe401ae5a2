"""A minimal Django site for the Django integration's tests: settings and urls."""

from __future__ import annotations

from django.urls import include, path

SETTINGS = {
    "SECRET_KEY": "tests-only",
    "ALLOWED_HOSTS": ["testserver"],
    "ROOT_URLCONF": __name__,
    "INSTALLED_APPS": ["pusherlib.integrations.django"],
    "MIDDLEWARE": ["django.middleware.csrf.CsrfViewMiddleware"],
    "DATABASES": {},
    "USE_TZ": True,
    "PUSHER_MAX_BODY_BYTES": 4096,
}

urlpatterns = [path("pusher/", include("pusherlib.integrations.django.urls"))]
