"""The app's settings turned into the objects ``pushqueue`` and pusherlib are made of.

``pushqueue`` is a library: it takes its configuration as arguments and never reads the
app's :mod:`settings`. This module is where :class:`settings.Settings` meets it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from pusherlib import Pusher
from pushqueue import oidc
from pushqueue.cloudtasks import HttpTarget
from pushqueue.events import EventQueue
from pushqueue.tasks import Backend
from settings import Settings


def backend_for(settings: Settings) -> Backend:
    """The configured backend: Cloud Tasks (or its emulator), or the bundled task queue."""
    if settings.tasks_backend == "taskqueue":
        from pushqueue.bundled import BundledTaskqueueBackend

        return BundledTaskqueueBackend(
            queue_name=settings.queue_name, parked_pull_queue_name=settings.parked_pull_queue_name
        )
    from pushqueue.cloudtasks import CloudTasksBackend

    assert settings.project, "Settings.from_env requires GOOGLE_CLOUD_PROJECT for Cloud Tasks"
    return CloudTasksBackend(
        settings.project,
        settings.location,
        queue_name=settings.queue_name,
        parked_queue_name=settings.parked_queue_name,
        emulator_host=settings.emulator_host,
        http_target=http_target_for(settings),
    )


def event_queue_for(
    settings: Settings, backend: Backend | None = None, pusher: Pusher | None = None
) -> EventQueue:
    """An :class:`EventQueue` on ``backend`` (the configured one by default) that checks
    events with ``pusher``'s request builder (a client for the settings by default)."""
    builder = (pusher or settings.pusher_client()).requests
    return EventQueue(backend or backend_for(settings), builder, queue_name=settings.queue_name)


def http_target_for(settings: Settings) -> HttpTarget | None:
    """The settings' HTTP target: ``None`` (App Engine tasks) unless ``TASKS_HTTP_TARGET_URL``
    is set; the token's audience is ``TASKS_OIDC_AUDIENCE``, or the origin."""
    url, account = settings.http_target_url, settings.oidc_service_account
    if url is None or account is None:
        return None
    return HttpTarget(url, account, settings.oidc_audience or url)


def verifier_for(settings: Settings) -> oidc.OidcVerifier | None:
    """The verifier the settings ask for: ``None`` when ``TASKS_OIDC_AUDIENCE`` is unset."""
    if settings.oidc_audience is None:
        return None
    certs = oidc.GoogleCerts(settings.oidc_certs_url)
    return oidc.OidcVerifier(settings.oidc_audience, certs, service_account=settings.oidc_service_account)


def ndb_context_for(settings: Settings) -> Callable[[], AbstractContextManager[Any]] | None:
    """With ``PUSHER_TRANSPORT=ndb``, what opens a google-cloud-ndb context for a task (the
    worker then sends through NDB futures); ``None`` otherwise. Locally (no Google
    credentials) the client uses anonymous ones."""
    if settings.worker_transport != "ndb":
        return None
    from google.cloud import ndb

    credentials = None
    if settings.local_development:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    client = ndb.Client(project=settings.project or "local-dev", credentials=credentials)
    return client.context
