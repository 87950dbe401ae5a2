"""Datastore gone for a minute, then back: parking works again within seconds.

A TCP relay stands between the parking store and the Datastore emulator; closing it
(connections refused, open ones cut) makes Datastore unreachable without restarting the
emulator. gRPC's default reconnect backoff grows to 120 s between attempts, so a channel
that failed for a minute kept failing long after Datastore was back (27 s after a 157 s
outage, measured); the app's channel tries again at least every 2 s."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from pushqueue.datastore import NdbClients
from pushqueue.parking import DatastoreParking
from pushqueue.tasks import QueueUnavailable, TaskRequest
from tests.support.figures import write_figures
from tests.support.processes import free_port
from tests.support.soketi import unique

OUTAGE = 60.0  # seconds: gRPC's default backoff is then about 27 s between attempts
BACK_WITHIN = 5.0


class Relay:
    """Copies TCP connections from a fixed local ``port`` to ``target_port``: :meth:`up`
    listens, :meth:`down` stops listening and cuts every connection."""

    def __init__(self, target_port: int):
        self.port, self.target_port = free_port(), target_port
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    def up(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        assert self._listener is not None
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: close alone would not
        self._listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_copy, args=(source, sink), daemon=True).start()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)


def park(store: DatastoreParking) -> bool:
    try:
        store.park(TaskRequest("/worker/push/reconnect/ev", b"{}"), unique("back"))
        return True
    except QueueUnavailable:
        return False


@pytest.mark.timeout(OUTAGE + 120)
def test_parking_works_again_within_seconds_of_datastore_coming_back(datastore):
    relay = Relay(datastore.port)
    relay.up()
    store = DatastoreParking(NdbClients(datastore.project, f"127.0.0.1:{relay.port}"))
    assert park(store)
    relay.down()
    gone = time.monotonic()
    failed = 0
    while time.monotonic() - gone < OUTAGE:
        failed += not park(store)
        time.sleep(2)
    relay.up()
    back = time.monotonic()
    while not park(store) and time.monotonic() - back < 60:
        time.sleep(0.25)
    seconds = time.monotonic() - back
    write_figures(
        "datastore_back",
        {"outage_s": OUTAGE, "parks_failed": failed, "parked_again_after_s": round(seconds, 2)},
    )
    relay.down()
    assert failed >= OUTAGE / 3  # each failed fast
    assert seconds < BACK_WITHIN


def test_the_deployed_clients_channel_is_rebuilt_as_google_cloud_ndb_builds_it(monkeypatch):
    """Deployed (no emulator), the channel is a secure one with the reconnect options. This
    relies on google-cloud-ndb's Client attributes (``stub``, ``secure``, ``_credentials``):
    it fails if a new version renames them."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import ndb
    from google.cloud.datastore_v1.services.datastore.transports import DatastoreGrpcTransport

    from pushqueue.datastore import _reconnect_promptly

    monkeypatch.delenv("DATASTORE_EMULATOR_HOST", raising=False)
    client = ndb.Client(project="p", credentials=AnonymousCredentials())
    assert client.secure
    before = client.stub
    _reconnect_promptly(client)
    assert isinstance(client.stub, DatastoreGrpcTransport) and client.stub is not before
