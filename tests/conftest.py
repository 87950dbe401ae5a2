"""Shared fixtures: a real soketi for the session, clients and subscribers bound to it.
Hypothesis keeps its example database in test-output/, not in the source tree."""

from __future__ import annotations

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from pusherlib import Pusher
from tests.support.processes import OUTPUT
from tests.support.soketi import Soketi
from tests.support.subscriber import Subscriber

set_hypothesis_home_dir(OUTPUT / "hypothesis")  # its example database and caches


@pytest.fixture(scope="session")
def soketi():
    with Soketi() as server:
        yield server


@pytest.fixture
def pusher(soketi):
    client = Pusher.from_url(
        soketi.url, encryption_master_key_base64="MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
    )
    yield client
    client.close()


@pytest.fixture
def subscriber(soketi):
    with Subscriber(soketi.ws_url) as connection:
        yield connection


@pytest.fixture
def other_subscriber(soketi):
    """A second subscriber: for what one connection must get and another must not."""
    with Subscriber(soketi.ws_url) as connection:
        yield connection


@pytest.fixture(scope="session")
def datastore():
    """The Datastore emulator for the session (skipped with a reason without gcloud)."""
    from tests.support.datastore import running_datastore

    with running_datastore() as emulator:
        yield emulator


@pytest.fixture
def ndb_context(datastore):
    """A google-cloud-ndb context on the emulator, for the test's thread."""
    with datastore.client().context() as context:
        yield context


@pytest.fixture(params=["memory", "datastore"])
def parking_store(request):
    """A parking store of each kind: this process's memory, and the Datastore emulator's."""
    from pushqueue.parking import DatastoreParking, MemoryParking

    if request.param == "memory":
        return MemoryParking()
    return DatastoreParking(request.getfixturevalue("datastore").clients())
