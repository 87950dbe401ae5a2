"""The app's settings turned into the objects ``pushqueue``, pusherlib and :mod:`access` are
made of (``pushqueue`` never reads :mod:`settings`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import access
import pushqueue
from access import oidc
from access.channels import app_policy
from handlers.demo_auth import install_demo_policy
from pusherlib import Pusher
from pushqueue.cloudtasks import HttpTarget
from pushqueue.datastore import NdbClients
from pushqueue.events import EventQueue
from pushqueue.outbox import Outbox
from pushqueue.parking import ParkingStore, store_for
from pushqueue.tasks import Backend, QueueError
from settings import ConfigError, Settings

QUEUE_YAML = Path(__file__).resolve().parent.parent / "queue.yaml"  # deployed with the app


def ndb_clients_for(settings: Settings) -> NdbClients:
    """The process's google-cloud-ndb client (made on first use): the emulator's, or Datastore's."""
    return NdbClients(settings.project, settings.datastore_emulator_host)


def parking_for(settings: Settings, clients: NdbClients) -> ParkingStore:
    """Where parked events wait (``settings.parked_store``). Datastore is reached now: an app
    that cannot use it stops at start-up with a message instead of failing to park later."""
    if settings.parked_store == "datastore":
        try:
            clients.client  # noqa: B018 - made now: no credentials stops the start-up
        except QueueError as exc:
            raise ConfigError(
                f"parked events go to Datastore, which cannot be used: {exc}. Deployed, give the "
                "app credentials; locally, start the Datastore emulator and set "
                "DATASTORE_EMULATOR_HOST (or, in local development without gcloud, set "
                "ALLOW_UNVERIFIED_LOCAL_REQUESTS=1: parked events then stay in memory)"
            ) from None
    return store_for(settings.parked_store, clients)


def backend_for(settings: Settings, parking: ParkingStore | None = None) -> Backend:
    """The configured backend: Cloud Tasks (or its emulator), or the bundled task queue,
    parking in ``parking`` (the configured store by default)."""
    parking = parking or parking_for(settings, ndb_clients_for(settings))
    if settings.tasks_backend == "taskqueue":
        from pushqueue.bundled import BundledTaskqueueBackend

        return BundledTaskqueueBackend(queue_name=settings.queue_name, parking=parking)
    from pushqueue.cloudtasks import CloudTasksBackend

    assert settings.project, "Settings.from_env requires GOOGLE_CLOUD_PROJECT for Cloud Tasks"
    return CloudTasksBackend(
        settings.project,
        settings.location,
        queue_name=settings.queue_name,
        parking=parking,
        emulator_host=settings.emulator_host,
        http_target=http_target_for(settings),
    )


def event_queue_for(
    settings: Settings,
    backend: Backend | None = None,
    pusher: Pusher | None = None,
    clients: NdbClients | None = None,
) -> EventQueue:
    """An :class:`EventQueue` on ``backend`` checking events with ``pusher``, with an outbox
    in ``clients``' Datastore unless parked events are kept in memory."""
    builder = (pusher or settings.pusher_client()).requests
    clients = clients or ndb_clients_for(settings)
    backend = backend or backend_for(settings, parking_for(settings, clients))
    outbox = Outbox(clients, backend.add, backend.park) if settings.parked_store == "datastore" else None
    if settings.queue_shards > 1 and QUEUE_YAML.exists():
        check_queues_declared(settings, QUEUE_YAML)
    return EventQueue(
        backend, builder, queue_name=settings.queue_name, outbox=outbox, shards=settings.queue_shards
    )


def check_queues_declared(settings: Settings, queue_yaml: Path) -> None:
    """Stop the start-up (:class:`ConfigError`) when ``queue_yaml`` lacks a queue the settings
    send to: the queue itself, or one of its shards."""
    from google.appengine.api import queueinfo

    with open(queue_yaml) as file:
        declared = {queue.name for queue in queueinfo.LoadSingleQueue(file).queue or ()}
    wanted = [settings.queue_name]
    if settings.queue_shards > 1:
        wanted += [f"{settings.queue_name}-{n}" for n in range(settings.queue_shards)]
    missing = [name for name in wanted if name not in declared]
    if missing:
        raise ConfigError(
            f"{queue_yaml.name} declares no queue {', '.join(missing)}: TASKS_QUEUE="
            f"{settings.queue_name} with TASKS_QUEUE_SHARDS={settings.queue_shards} sends events "
            "there (add them, or change the settings)"
        )


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


def access_for(settings: Settings) -> access.Access:
    """The trust decisions of ``settings``, with the demo's channel rules when ``DEMO_MODE=1``."""
    installs = (install_demo_policy,) if settings.demo_mode else ()
    return access.access_for(settings, app_policy(*installs))


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


def loop_pusher_for(settings: Settings) -> Pusher | None:
    """With ``PUSHER_TRANSPORT=http`` (the default), a client on an asyncio transport for the
    worker's one-event tasks on the event loop; ``None`` with another transport."""
    if settings.worker_transport != "http":
        return None
    from pusherlib.transports.asyncio import AsyncioTransport

    # As many connections as the server admits tasks: an admitted task never waits for one.
    return settings.pusher_client(transport=AsyncioTransport(max_connections=settings.proven_requests))


def configure_from_env() -> EventQueue:
    """Make the queue configured by the environment (:meth:`Settings.from_env`) the process's
    default, so that ``pushqueue.enqueue_event`` and ``pushqueue.taskqueue.add`` work in your
    own scripts and jobs outside the app (the app does this at start-up); return it."""
    settings = Settings.from_env()
    clients = ndb_clients_for(settings)
    # Only the worker parks: here the store is made without reaching Datastore (it would be
    # reached on first use), so a script needs no Datastore unless it enqueues transactionally.
    backend = backend_for(settings, store_for(settings.parked_store, clients))
    queue = event_queue_for(settings, backend, clients=clients)
    pushqueue.configure(queue)
    return queue
