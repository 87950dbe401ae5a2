"""google-cloud-ndb for the app: one client per process (the emulator with
``DATASTORE_EMULATOR_HOST``), a context per request (:class:`NdbContextMiddleware`) or where
none is open (:func:`ndb_context`), and Datastore's errors as queue errors. Every call passes
:data:`CALL_OPTIONS` (a deadline, no retry inside ndb): why in RELIABILITY.md, 'Worker and queue'."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .lazy import OnFirstUse
from .tasks import QueueRefused, QueueUnavailable

DEFAULT_PROJECT = "local-dev"
# Reconnect attempts at most 2 s apart (gRPC's default is 120 s): RELIABILITY.md, 'Worker and queue'.
RECONNECT_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 500), ("grpc.max_reconnect_backoff_ms", 2000))
DEADLINE = 10.0  # seconds for one Datastore call (a 1 MB put on a loaded 2-core emulator is slow)
CALL_OPTIONS: dict[str, Any] = {"timeout": DEADLINE, "retries": 0}


class NdbClients:
    """The process's one ``ndb.Client``, made on first use (no Datastore call until then)."""

    def __init__(self, project: str | None, emulator_host: str | None):
        self.project, self.emulator_host = project, emulator_host
        self._client: OnFirstUse[Any] = OnFirstUse(self._make)

    @property
    def client(self) -> Any:
        """The ``google.cloud.ndb.Client``."""
        return self._client.get()

    def _make(self) -> Any:
        from google.cloud import ndb

        # google-cloud-ndb reads DATASTORE_EMULATOR_HOST from the environment when a client
        # is made (only then): it is given this client's setting for that moment.
        with _EMULATOR_VARIABLE_LOCK, _emulator_variable(self.emulator_host):
            if self.emulator_host:
                from google.auth.credentials import AnonymousCredentials

                project = self.project or DEFAULT_PROJECT
                client = ndb.Client(project=project, credentials=AnonymousCredentials())
            else:
                with translated_errors():  # no credentials found: DefaultCredentialsError
                    client = ndb.Client(project=self.project)
        _reconnect_promptly(client)
        return client

    @contextmanager
    def context(self) -> Iterator[None]:
        """The current NDB context, or a new one for the block."""
        from google.cloud.ndb import context as context_module

        if context_module.get_context(False) is not None:
            yield
            return
        with self.client.context():
            yield


def _reconnect_promptly(client: Any) -> None:
    """Give ``client`` a channel made as google-cloud-ndb makes it, with
    :data:`RECONNECT_OPTIONS` (ndb takes no channel options; its own channel never connected)."""
    import grpc
    from google.cloud import _helpers
    from google.cloud.datastore_v1.services.datastore.transports import DatastoreGrpcTransport

    if client.secure:
        agent = client.client_info.to_user_agent()
        channel = _helpers.make_secure_channel(client._credentials, agent, client.host, RECONNECT_OPTIONS)
    else:
        unlimited = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))
        channel = grpc.insecure_channel(client.host, options=[*unlimited, *RECONNECT_OPTIONS])
    client.stub.close()
    client.stub = DatastoreGrpcTransport(host=client.host, client_info=client.client_info, channel=channel)


_EMULATOR_VARIABLE = "DATASTORE_EMULATOR_HOST"
_EMULATOR_VARIABLE_LOCK = threading.Lock()


@contextmanager
def _emulator_variable(host: str | None) -> Iterator[None]:
    """``DATASTORE_EMULATOR_HOST`` set to ``host`` (removed for ``None``) in the block."""
    previous = os.environ.pop(_EMULATOR_VARIABLE, None)
    if host:
        os.environ[_EMULATOR_VARIABLE] = host
    try:
        yield
    finally:
        os.environ.pop(_EMULATOR_VARIABLE, None)
        if previous is not None:
            os.environ[_EMULATOR_VARIABLE] = previous


class NdbContextMiddleware:
    """Runs each request of ``app`` in an NDB context of ``clients``' client (cheap until used)."""

    def __init__(self, app: Callable[..., Any], clients: NdbClients):
        self.app, self.clients = app, clients

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.clients.context():
            # The body is materialised here: NDB work in a streamed body would run without context.
            return list(self.app(environ, start_response))


@contextmanager
def translated_errors() -> Iterator[None]:
    """Raise Datastore's errors as :class:`QueueRefused` (an invalid request: retrying cannot
    help) or :class:`QueueUnavailable` (unreachable, a deadline, credentials)."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud.ndb import exceptions as ndb_exceptions

    try:
        yield
    except api_exceptions.FailedPrecondition as exc:  # a BadRequest, but an index still building
        raise QueueUnavailable(_message(exc)) from exc
    except (
        api_exceptions.BadRequest,
        ndb_exceptions.BadValueError,
        ndb_exceptions.BadArgumentError,
        ndb_exceptions.BadRequestError,
    ) as exc:
        raise QueueRefused(_message(exc)) from exc
    except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
        raise QueueUnavailable(_message(exc)) from exc


def _message(exc: Exception) -> str:
    return f"datastore: {type(exc).__name__} {exc}".rstrip()
