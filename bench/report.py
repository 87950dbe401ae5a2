"""The results of a run: table rows, and the JSON and Markdown files they are written to."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .rounds import median, median_ratio

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One line of the table: our figure, the baseline's, the server's limit, and the ratios
    (medians of the per-round ratios when built with :meth:`from_rounds`)."""

    metric: str
    unit: str
    ours: float
    official: float | None = None
    server: float | None = None
    goal: str = ""
    met: bool | None = None
    # What the ``official`` column holds when it is not the official library.
    baseline: str = "official pusher library"
    vs_official: float | None = None
    vs_server: float | None = None

    def __post_init__(self) -> None:
        if self.vs_official is None and self.official:
            self.vs_official = self.ours / self.official
        if self.vs_server is None and self.server:
            self.vs_server = self.ours / self.server

    @classmethod
    def from_rounds(
        cls,
        metric: str,
        unit: str,
        ours: list[float],
        official: list[float] | None = None,
        server: list[float] | None = None,
        *,
        at_least: float | None = None,
        **options: Any,
    ) -> Row:
        """Medians of the rounds; ``at_least``: the goal is met when ours/official reaches it."""
        row = cls(
            metric,
            unit,
            median(ours),
            median(official) if official else None,
            median(server) if server else None,
            vs_official=median_ratio(ours, official) if official else None,
            vs_server=median_ratio(ours, server) if server else None,
            **options,
        )
        if at_least is not None:
            row.met = row.vs_official is not None and row.vs_official >= at_least
        return row

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    soketi = json.loads((ROOT / "node_modules/@soketi/soketi/package.json").read_text())["version"]
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "node": _output(["node", "--version"]),
        "soketi": soketi,
        "wrk": _output(["wrk", "-v"]).split(" [")[0],
        "official_pusher": metadata.version("pusher"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _output(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).strip().splitlines()[0]


def markdown_table(rows: list[Row]) -> str:
    """Rows against the official library (and the server), then rows against other baselines."""
    against_official = [row for row in rows if row.baseline == Row.baseline]
    others = [row for row in rows if row.baseline != Row.baseline]
    tables = []
    if against_official:
        header = [
            "benchmark",
            "unit",
            "pusherlib",
            "official",
            "server limit",
            "vs official",
            "of server",
            "goal",
        ]
        cells = [
            [
                *_measured(row),
                _number(row.server),
                _ratio(row.vs_official),
                _percent(row.vs_server),
                _goal(row),
            ]
            for row in against_official
        ]
        tables.append(_table(header, cells))
    if others:
        header = ["benchmark", "unit", "measured", "baseline", "baseline is", "ratio", "goal"]
        cells = [
            [
                *_measured(row),
                row.baseline if row.official is not None else "",
                _ratio(row.vs_official),
                _goal(row),
            ]
            for row in others
        ]
        tables.append(_table(header, cells))
    return "\n\n".join(tables)


def _table(header: list[str], cells: list[list[str]]) -> str:
    align = ["---" if name in ("benchmark", "unit", "baseline is", "goal") else "---:" for name in header]
    lines = [header, align, *cells]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _measured(row: Row) -> list[str]:
    return [row.metric, row.unit, _number(row.ours), _number(row.official)]


def _goal(row: Row) -> str:
    return row.goal + ("" if row.met is None else (" ✅" if row.met else " ❌"))


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def write(out: Path, info: dict[str, Any], rows: list[Row], details: dict[str, Any], extra_md: str) -> None:
    """``results.json`` (everything) and ``results.md`` (the table and the machine)."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {**info, "rows": [row.as_dict() for row in rows], "details": details}
    (out / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    machine_lines = "\n".join(f"- {key}: {value}" for key, value in info["machine"].items())
    (out / "results.md").write_text(
        f"# Benchmark results ({info['finished']}, {info['seconds']:.0f} s)\n\n"
        f"{markdown_table(rows)}\n\n{extra_md}\n\n## Machine\n{machine_lines}\n"
    )
