"""Your own script against `make dev` (README "Using it from your own code").

Run from the checkout with the environment the stack prints::

    PUSHER_URL=http://app-key:app-secret@127.0.0.1:6001/apps/1 \
    GOOGLE_CLOUD_PROJECT=local-dev CLOUD_TASKS_EMULATOR_HOST=127.0.0.1:8123 \
    .venv/bin/python -m examples.own_code
"""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials
from google.cloud import ndb

import pushqueue
from handlers import wiring
from settings import PusherSettings

CHANNEL = "own-code"


def main() -> None:
    # A Pusher client from PUSHER_URL alone: no queue settings needed.
    pusher = PusherSettings.from_env().client()
    pusher.trigger(CHANNEL, "direct", {"how": "straight to Pusher"})

    # Through the queue (the emulator), then the app's worker: needs GOOGLE_CLOUD_PROJECT
    # and CLOUD_TASKS_EMULATOR_HOST as well.
    wiring.configure_from_env()
    task = pushqueue.enqueue_event(CHANNEL, "queued", {"how": "through the queue"})
    print(f"queued as {task}")

    # google-cloud-ndb futures locally: a project and anonymous credentials (deployed:
    # ndb.Client() finds both on App Engine).
    with ndb.Client(project="local-dev", credentials=AnonymousCredentials()).context():
        future = pusher.trigger_async(CHANNEL, "ndb", {"how": "an ndb future"})
        future.result()
    pusher.close()


if __name__ == "__main__":
    main()
