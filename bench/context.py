"""What every benchmark gets: the one server, wrk aimed at it, and how many rounds to run."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.soketi import Soketi

from .clients import Wrk


@dataclass
class Context:
    server: Soketi
    wrk: Wrk
    rounds: int
