"""scripts/install-system-deps.sh: nothing to do when the commands exist; without apt-get it
names what to install and exits 0, so `make test` and `make bench` go on."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.support.processes import ROOT

SCRIPT = ROOT / "scripts" / "install-system-deps.sh"
BASH = shutil.which("bash") or "/bin/bash"


def run(*commands: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run([BASH, str(SCRIPT), *commands], env=env, capture_output=True, text=True, timeout=30)


def test_commands_that_exist_need_nothing():
    result = run("bash", "sh", path=os.environ["PATH"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_without_apt_get_it_says_what_to_install_and_goes_on(tmp_path):
    result = run("no-such-browser", "no-such-load-tool", path=str(tmp_path))  # no apt-get there
    assert result.returncode == 0, result.stderr
    assert "no-such-browser no-such-load-tool not found and there is no apt-get" in result.stdout
    assert "install no-such-browser no-such-load-tool" in result.stdout
