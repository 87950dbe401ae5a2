"""The servers the tests start do not outlive pytest: SIGTERM to a pytest run stops each
server's whole process group (a server's own children included) before pytest ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.devstack import process_alive
from tests.support.processes import ROOT, stop_group, wait_until

HOLDER = """
import time
from pathlib import Path

from tests.support.processes import ManagedProcess, free_port
from tests.support.soketi import Soketi


def test_hold_servers_until_stopped():
    port = free_port()
    # a server that starts a child of its own: the child must be stopped too
    shell = ManagedProcess(
        "cleanup-shell", ["sh", "-c", f"sleep 600 & exec python3 -m http.server {port}"], {}, port
    )
    with Soketi(name="cleanup-soketi") as soketi, shell:
        Path(PIDS_FILE).write_text(f"{soketi.process.pid} {shell.process.pid}")
        time.sleep(600)
"""


def group_members(group: int) -> set[int]:
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                members.add(int(entry.name))
    return members


def test_sigterm_to_pytest_stops_every_server_group(tmp_path):
    pids_file = tmp_path / "pids"
    test_file = tmp_path / "test_holder.py"
    test_file.write_text(HOLDER.replace("PIDS_FILE", repr(str(pids_file))))
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        str(test_file),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_until(lambda: pids_file.exists() or run.poll() is not None, 60, "the servers")
        assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
        groups = [int(pid) for pid in pids_file.read_text().split()]
        members = set().union(*(group_members(group) for group in groups))
        assert len(members) >= 3, "soketi, the shell's server and its sleeping child"
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == -signal.SIGTERM
        wait_until(lambda: not any(process_alive(pid) for pid in members), 30, "every server gone")
    finally:
        stop_group(run)  # whatever is left of a failed run
