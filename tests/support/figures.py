"""Where the reliability and security tests write their figures: ``test-output/reliability/``.

``RELIABILITY.md`` quotes these files; each names the test that wrote it.
"""

from __future__ import annotations

import json
from typing import Any

from .processes import OUTPUT

FIGURES_DIR = OUTPUT / "reliability"


def write_figures(name: str, figures: dict[str, Any]) -> None:
    """Write ``figures`` to ``test-output/reliability/<name>.json``."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=False) + "\n")
