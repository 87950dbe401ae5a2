"""The simulation's time series drawn with Pillow (as bench/plot.py draws the bench's): latency
(p50, p99, log scale) above, instances and backlog below, against time."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bench.plot import LATENCY_COLOURS, _nice_step

WIDTH, PANEL, LEFT, RIGHT, TOP, GAP = 900, 260, 90, 90, 50, 60


def timeline(series: list[dict[str, float]], path: Path, title: str) -> None:
    """Two panels over the run's ticks: p50/p99 latency (ms), then instances (left axis) and
    the backlog of tasks (right axis)."""
    image = Image.new("RGB", (WIDTH, TOP + 2 * PANEL + GAP + 60), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=16), ImageFont.load_default(size=13)
    draw.text((WIDTH / 2, 20), title, fill="black", font=font, anchor="mm")
    end = max(point["t"] for point in series)
    plot_w = WIDTH - LEFT - RIGHT

    def x_of(t: float) -> float:
        return LEFT + plot_w * t / end

    latencies = [
        point[key] * 1000 for point in series for key in ("p50_s", "p99_s") if not math.isnan(point[key])
    ]
    low = 10 ** math.floor(math.log10(max(0.1, min(latencies, default=1))))
    high = 10 ** math.ceil(math.log10(max(latencies, default=10)))
    high = high * 10 if high <= low else high

    def y_latency(ms: float) -> float:
        return TOP + PANEL * (1 - math.log10(max(ms, low) / low) / math.log10(high / low))

    _frame(draw, small, TOP, "latency, ms")
    for decade in range(round(math.log10(low)), round(math.log10(high)) + 1):
        draw.text((LEFT - 8, y_latency(10**decade)), f"{10**decade:g}", fill="black", font=small, anchor="rm")
    for index, key in enumerate(("p50_s", "p99_s")):
        points = [(x_of(p["t"]), y_latency(p[key] * 1000)) for p in series if not math.isnan(p[key])]
        if len(points) > 1:
            draw.line(points, fill=LATENCY_COLOURS[index], width=2)
        draw.text((LEFT + 10 + 80 * index, TOP + 10), key[:3], fill=LATENCY_COLOURS[index], font=small)

    top2 = TOP + PANEL + GAP
    _frame(draw, small, top2, "instances")
    most = max(max(point["instances"] for point in series), 1)
    step = _nice_step(most / 4) if most > 4 else 1
    most = step * math.ceil(most / step)
    backlog = max(max(point["backlog"] for point in series), 1)
    for tick in range(0, int(most) + 1, int(step)):
        draw.text(
            (LEFT - 8, top2 + PANEL * (1 - tick / most)), str(tick), fill="black", font=small, anchor="rm"
        )
    draw.text((WIDTH - RIGHT + 8, top2), f"{backlog:,.0f}", fill=LATENCY_COLOURS[2], font=small, anchor="lm")
    draw.text((WIDTH - RIGHT + 8, top2 + PANEL), "0", fill=LATENCY_COLOURS[2], font=small, anchor="lm")
    draw.text((WIDTH - RIGHT + 8, top2 - 12), "backlog", fill=LATENCY_COLOURS[2], font=small, anchor="lm")
    for key, scale, colour in (
        ("instances", most, LATENCY_COLOURS[0]),
        ("backlog", backlog, LATENCY_COLOURS[2]),
    ):
        points = [(x_of(p["t"]), top2 + PANEL * (1 - p[key] / scale)) for p in series]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
    for seconds in range(0, int(end) + 1, int(_nice_step(end / 8))):
        draw.text((x_of(seconds), top2 + PANEL + 8), str(seconds), fill="black", font=small, anchor="mt")
    draw.text((WIDTH / 2, top2 + PANEL + 34), "time, s", fill="black", font=font, anchor="mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _frame(draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont, top: float, label: str) -> None:
    draw.rectangle((LEFT, top, WIDTH - RIGHT, top + PANEL), outline="black")
    draw.text((LEFT, top - 6), label, fill="black", font=font, anchor="lb")
