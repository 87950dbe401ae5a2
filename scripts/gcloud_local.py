"""Google's local servers from the gcloud CLI: the Datastore emulator and dev_appserver.py.

Standard library only, shared by the local stacks (``make dev``, ``make appserver``) and
the test fixtures. Neither server can be installed from a package registry: they come
with the gcloud CLI (components ``cloud-datastore-emulator`` and ``app-engine-python``).
Code using them checks :func:`gcloud_missing` first and, where it is ``None`` only,
starts them.

The Datastore emulator::

    argv, env = datastore_emulator_command(port=8081, project="local-dev")
    # start argv with env in its own process group (start_new_session=True), wait until
    # datastore_emulator_answers(8081); clients find it through
    # DATASTORE_EMULATOR_HOST=127.0.0.1:8081. Stop the whole process group (devstack's
    # stop_group): it starts a Java child.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
INSTALL_HINT = (
    "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) with its "
    "components app-engine-python and cloud-datastore-emulator (Debian/Ubuntu: apt-get install "
    "google-cloud-cli google-cloud-cli-app-engine-python google-cloud-cli-datastore-emulator; "
    "elsewhere: gcloud components install app-engine-python cloud-datastore-emulator), "
    "and Java 11+ for the Datastore emulator"
)


def gcloud_missing() -> str | None:
    """Why Google's local servers cannot run here (``None`` when ``gcloud`` is on PATH)."""
    if shutil.which("gcloud") is None:
        return f"the gcloud CLI is not on PATH: {INSTALL_HINT}"
    return None


def datastore_emulator_missing() -> str | None:
    """Why the Datastore emulator cannot run here: no gcloud, no emulator component, no Java
    (``None`` when it can)."""
    missing = gcloud_missing()
    if missing is not None:
        return missing
    sdk = sdk_root()
    if sdk is None or not (sdk / "platform" / "cloud-datastore-emulator").is_dir():
        return f"the gcloud component cloud-datastore-emulator is not installed: {INSTALL_HINT}"
    if shutil.which("java") is None:
        return f"Java is not on PATH (the Datastore emulator needs Java 11+): {INSTALL_HINT}"
    return None


def sdk_root() -> Path | None:
    """The Google Cloud SDK's directory (where ``platform/google_appengine`` lives)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    return Path(gcloud).resolve().parent.parent


def datastore_emulator_command(port: int, project: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment additions that start the Datastore emulator in memory."""
    argv = [
        "gcloud",
        "beta",
        "emulators",
        "datastore",
        "start",
        "--no-store-on-disk",
        f"--host-port={HOST}:{port}",
        f"--project={project}",
        # What new projects run: Firestore in Datastore mode, whose queries are strongly
        # consistent (the legacy mode's emulator fails 10% of them on purpose).
        "--use-firestore-in-datastore-mode",
    ]
    return argv, {"CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}


def datastore_emulator_answers(port: int) -> bool:
    """The emulator on ``HOST:port`` answers ``GET /`` with ``Ok`` (it is ready)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=2) as reply:
            return reply.read().strip() == b"Ok"
    except (OSError, urllib.error.URLError):
        return False
