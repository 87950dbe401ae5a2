"""The Datastore emulator fixture: google-cloud-ndb reads and writes it, transactions roll back."""

from __future__ import annotations

import pytest
from google.cloud import ndb

from scripts.gcloud_local import datastore_emulator_answers
from tests.support.soketi import unique


class Note(ndb.Model):
    text = ndb.StringProperty()


def test_ndb_writes_and_reads_the_emulator(ndb_context):
    key = Note(id=unique("note-"), text="hello").put()
    assert key.get().text == "hello"


def test_a_failed_transaction_writes_nothing(ndb_context):
    name = unique("note-")

    @ndb.transactional()
    def write_then_fail():
        Note(id=name, text="never").put()
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert ndb.Key(Note, name).get() is None


def test_the_emulator_answers_on_its_port(datastore):
    assert datastore_emulator_answers(datastore.port)
