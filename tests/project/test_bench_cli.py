"""``make bench`` leaves the committed results alone unless asked to replace them."""

from __future__ import annotations

import subprocess

from bench.__main__ import LATEST, RESULTS, parse_args
from tests.support.processes import ROOT


def test_results_go_to_an_untracked_folder_by_default():
    assert parse_args([]).out == LATEST
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(LATEST / "results.json")], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "test-output/bench must be git-ignored"


def test_save_writes_the_committed_results():
    assert parse_args(["--save"]).out == RESULTS == ROOT / "bench" / "results"
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "bench/results/results.md"], cwd=ROOT, capture_output=True
    )
    assert tracked.returncode == 0


def test_make_bench_passes_save_only_when_asked():
    def bench_command(*variables: str) -> str:
        dry_run = subprocess.run(
            ["make", "--no-print-directory", "-n", "bench", *variables],  # also under `make test`
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return dry_run.stdout.strip().splitlines()[-1]

    assert bench_command().split()[-2:] == ["-m", "bench"]
    assert bench_command("SAVE=1").endswith("-m bench --save")
