"""pusherlib as a wheel: it builds from this repository with pusherlib's packages only
(its Flask and Django integrations included), installs into a fresh virtualenv of the
oldest Python it supports (3.10, when installed) with its ``encryption`` and ``flask``
extras, and that installed copy triggers on soketi, decrypts with its optional PyNaCl and
answers a channel auth request through its Flask extension."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.processes import ROOT
from tests.support.soketi import unique

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys
import pusherlib
from pusherlib import Pusher
key = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
client = Pusher.from_url(sys.argv[1], encryption_master_key_base64=key)
client.trigger(sys.argv[2], "from-wheel", {"python": sys.version_info[:2]})
answer = client.authenticate("private-encrypted-wheel", "1.2")

import flask
from pusherlib.integrations.flask import Pusher as FlaskPusher
app = flask.Flask("wheel")
extension = FlaskPusher(app, client=client)
extension.auth(lambda channel_name, socket_id: True)
form = {"socket_id": "1.2", "channel_name": "private-wheel"}
flask_answer = app.test_client().post("/pusher/auth", data=form).get_json()
print(json.dumps({
    "file": pusherlib.__file__,
    "shared_secret": "shared_secret" in answer,
    "flask_auth": flask_answer == client.authenticate("private-wheel", "1.2"),
}))
"""


def oldest_python() -> str:
    """The path of a Python 3.10 interpreter when one runs here (``PYENV_VERSION`` picks
    it behind pyenv's shims), else this interpreter."""
    found = shutil.which("python3.10")
    if found:
        env = {**os.environ, "PYENV_VERSION": "3.10"}
        done = subprocess.run(
            [found, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return sys.executable


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=240, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources, so the build leaves nothing in the work tree."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "pusherlib", source / "pusherlib", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, source)
    [built] = dist.glob("pusherlib-*.whl")
    return built


def test_the_wheel_holds_pusherlib_and_its_integrations_and_is_typed(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names}
    assert packages == {"pusherlib", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "pusherlib/py.typed" in names and "pusherlib/testing.py" in names
    for module in (
        "endpoints/__init__.py",
        "endpoints/policy.py",
        "integrations/flask.py",
        "integrations/django/urls.py",
    ):
        assert f"pusherlib/{module}" in names
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "Requires-Python: >=3.10" in metadata
    assert "Requires-Dist: certifi" in metadata
    assert 'Requires-Dist: PyNaCl>=1.5; extra == "encryption"' in metadata
    assert 'Requires-Dist: Flask>=2.3; extra == "flask"' in metadata
    assert 'Requires-Dist: Django>=4.2; extra == "django"' in metadata


def test_the_installed_wheel_triggers_on_soketi(wheel, soketi, subscriber, tmp_path):
    python = oldest_python()
    run(python, "-m", "venv", tmp_path / "venv")
    venv_python = tmp_path / "venv" / "bin" / "python"
    run(
        venv_python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[encryption,flask]"
    )
    run(
        venv_python, "-m", "compileall", "-q", tmp_path / "venv" / "lib"
    )  # every module parses on this Python
    channel = unique("wheel-")
    subscriber.subscribe(channel)
    answer = json.loads(run(venv_python, "-c", SCRIPT, soketi.url, channel, cwd=tmp_path))
    assert answer["file"].startswith(str(tmp_path / "venv")) and answer["shared_secret"] is True
    assert answer["flask_auth"] is True
    data = json.loads(subscriber.event("from-wheel", channel)["data"])
    if python != sys.executable:
        assert data == {"python": [3, 10]}
