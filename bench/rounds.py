"""Measuring in alternating rounds, and the medians that summarise them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

# How long one contender runs in one round.
ROUND_SECONDS = 0.6


def rate(step: Callable[[], int], seconds: float = ROUND_SECONDS) -> float:
    """Call ``step`` (it returns how many events it sent) for about ``seconds``; events/s."""
    count = 0
    start = now = time.perf_counter()
    deadline = start + seconds
    while now < deadline:
        count += step()
        now = time.perf_counter()
    return count / (now - start)


def alternate(rounds: int, contenders: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run every contender once per round, rotating which goes first; each one's results."""
    names = list(contenders)
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(contenders[name]())
    return results


def median(values: list[float]) -> float:
    return statistics.median(values)


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of the per-round ratios (each round compares runs made side by side)."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))
