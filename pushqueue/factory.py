"""Building the queue objects from :class:`settings.Settings`."""

from __future__ import annotations

from pusherlib import Pusher
from settings import Settings

from .datastore import NdbClients
from .events import EventQueue
from .outbox import Outbox
from .parking import ParkingStore, store_for
from .tasks import Backend


def ndb_clients_for(settings: Settings) -> NdbClients:
    """The process's google-cloud-ndb client (made on first use): the emulator's, or Datastore's."""
    return NdbClients(settings.project, settings.datastore_emulator_host)


def backend_for(settings: Settings, parking: ParkingStore | None = None) -> Backend:
    """The configured backend: Cloud Tasks (or its emulator), or the bundled task queue,
    parking in ``parking`` (the configured store by default)."""
    if parking is None:
        parking = store_for(settings.parked_store, ndb_clients_for(settings))
    if settings.tasks_backend == "taskqueue":
        from .bundled import BundledTaskqueueBackend

        return BundledTaskqueueBackend(queue_name=settings.queue_name, parking=parking)
    from .cloudtasks import CloudTasksBackend, HttpTarget

    assert settings.project, "Settings.from_env requires GOOGLE_CLOUD_PROJECT for Cloud Tasks"
    return CloudTasksBackend(
        settings.project,
        settings.location,
        queue_name=settings.queue_name,
        parking=parking,
        emulator_host=settings.emulator_host,
        http_target=HttpTarget.from_settings(settings),
    )


def event_queue_for(
    settings: Settings,
    backend: Backend | None = None,
    pusher: Pusher | None = None,
    clients: NdbClients | None = None,
) -> EventQueue:
    """An :class:`EventQueue` on ``backend`` (the configured one by default) that checks
    events with ``pusher``'s request builder (a client for the settings by default), with
    an outbox for transactional events in ``clients``' Datastore (unless parked events are
    kept in memory: then there is no Datastore)."""
    builder = (pusher or settings.pusher_client()).requests
    clients = clients or ndb_clients_for(settings)
    backend = backend or backend_for(settings, store_for(settings.parked_store, clients))
    outbox = Outbox(clients, backend.add) if settings.parked_store == "datastore" else None
    return EventQueue(backend, builder, queue_name=settings.queue_name, outbox=outbox)
