"""Building the queue objects from :class:`settings.Settings`."""

from __future__ import annotations

from pusherlib import Pusher
from settings import Settings

from .events import EventQueue
from .tasks import Backend


def backend_for(settings: Settings) -> Backend:
    """The configured backend: Cloud Tasks (or its emulator), or the bundled task queue."""
    if settings.tasks_backend == "taskqueue":
        from .bundled import BundledTaskqueueBackend

        return BundledTaskqueueBackend(
            queue_name=settings.queue_name, parked_pull_queue_name=settings.parked_pull_queue_name
        )
    from .cloudtasks import CloudTasksBackend, HttpTarget

    assert settings.project, "Settings.from_env requires GOOGLE_CLOUD_PROJECT for Cloud Tasks"
    return CloudTasksBackend(
        settings.project,
        settings.location,
        queue_name=settings.queue_name,
        parked_queue_name=settings.parked_queue_name,
        emulator_host=settings.emulator_host,
        http_target=HttpTarget.from_settings(settings),
    )


def event_queue_for(
    settings: Settings, backend: Backend | None = None, pusher: Pusher | None = None
) -> EventQueue:
    """An :class:`EventQueue` on ``backend`` (the configured one by default) that checks
    events with ``pusher``'s request builder (a client for the settings by default)."""
    builder = (pusher or settings.pusher_client()).requests
    return EventQueue(backend or backend_for(settings), builder, queue_name=settings.queue_name)
