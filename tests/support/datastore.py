"""The Datastore emulator (from the gcloud CLI), started once per test session on a free port.

Tests that need it take the ``datastore`` fixture (see ``tests/conftest.py``): it starts
``gcloud beta emulators datastore start --no-store-on-disk`` in a process group of its own
and kills the whole group at the end of the session. Nothing is exported to this process's
environment (apps started later must not find it by accident): give ``app_env()`` to an
app, ``clients()`` to the app's Datastore classes. Where ``gcloud``
is not on PATH the tests are skipped with the reason printed in the summary.

The emulator keeps everything in memory for the session: tests use unique names (see
:func:`tests.support.soketi.unique`) rather than clearing it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pushqueue.datastore import NdbClients
from scripts.devstack import stop_group
from scripts.gcloud_local import datastore_emulator_answers, datastore_emulator_command, gcloud_missing

from .processes import OUTPUT, ROOT, free_port, wait_until

PROJECT = "test-project"
START_TIMEOUT = 90.0  # Java on a loaded 2-core machine


class DatastoreEmulator:
    """A running emulator: ``host`` (``127.0.0.1:port``) and ``project``; ``group``, its
    process group (to freeze it with SIGSTOP)."""

    def __init__(self, port: int, project: str, group: int):
        self.port, self.project, self.group = port, project, group

    @property
    def host(self) -> str:
        """The value of ``DATASTORE_EMULATOR_HOST``."""
        return f"127.0.0.1:{self.port}"

    def clients(self) -> NdbClients:
        """The app's google-cloud-ndb client maker, pointed at this emulator."""
        return NdbClients(self.project, self.host)

    def client(self):
        """A google-cloud-ndb client for the emulator (anonymous credentials)."""
        return self.clients().client

    def app_env(self) -> dict[str, str]:
        """The environment that points the app at this emulator."""
        return {"DATASTORE_EMULATOR_HOST": self.host, "GOOGLE_CLOUD_PROJECT": self.project}


@contextmanager
def running_datastore(project: str = PROJECT) -> Iterator[DatastoreEmulator]:
    """Start the emulator, set ``DATASTORE_EMULATOR_HOST`` here, yield it; stop it all after."""
    reason = gcloud_missing()
    if reason is not None:
        pytest.skip(f"Datastore emulator unavailable: {reason}")
    port = free_port()
    argv, env = datastore_emulator_command(port, project)
    OUTPUT.mkdir(exist_ok=True)
    with open(OUTPUT / "datastore-emulator.log", "ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: emulator_up(process, port), START_TIMEOUT, "the Datastore emulator")
        yield DatastoreEmulator(port, project, process.pid)
    finally:
        stop_group(process)


def emulator_up(process: subprocess.Popen, port: int) -> bool:
    """The emulator answers; ``RuntimeError`` if it exited."""
    if process.poll() is not None:
        raise RuntimeError(f"the Datastore emulator exited with {process.returncode}; see test-output/")
    return datastore_emulator_answers(port)
