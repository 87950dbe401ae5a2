"""The plots (throughput against requests in flight; latency distributions), drawn with Pillow."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 900, 560
LEFT, RIGHT, TOP, BOTTOM = 90, 30, 60, 70
SERIES = (
    ("server", "server's limit (wrk, pre-signed request)", (120, 120, 120)),
    ("ours", "pusherlib: trigger_async, NDB futures", (30, 110, 200)),
    ("official", "official pusher library: one thread per request in flight", (220, 90, 40)),
)


def throughput_vs_concurrency(by_concurrency: dict[str, dict[str, float]], path: Path, title: str) -> None:
    """Events/s (y) against requests in flight (x, log scale), one line per contender."""
    levels = sorted(int(n) for n in by_concurrency)
    top = max(by_concurrency[str(n)][name] for n in levels for name, _, _ in SERIES)
    step = _nice_step(top / 6)
    y_max = step * math.ceil(top / step)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=16), ImageFont.load_default(size=13)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(n: int) -> float:
        return LEFT + plot_w * math.log2(n / levels[0]) / math.log2(levels[-1] / levels[0])

    def y_of(value: float) -> float:
        return TOP + plot_h * (1 - value / y_max)

    draw.text((WIDTH / 2, 22), title, fill="black", font=font, anchor="mm")
    for tick in range(0, int(y_max) + 1, int(step)):
        y = y_of(tick)
        draw.line((LEFT, y, WIDTH - RIGHT, y), fill=(230, 230, 230))
        draw.text((LEFT - 8, y), f"{tick:,}", fill="black", font=small, anchor="rm")
    for n in levels:
        x = x_of(n)
        draw.line((x, TOP, x, TOP + plot_h), fill=(240, 240, 240))
        draw.text((x, TOP + plot_h + 8), str(n), fill="black", font=small, anchor="mt")
    draw.rectangle((LEFT, TOP, LEFT + plot_w, TOP + plot_h), outline="black")
    draw.text((LEFT + plot_w / 2, HEIGHT - 22), "requests in flight", fill="black", font=font, anchor="mm")
    draw.text((LEFT - 8, TOP - 10), "events/s", fill="black", font=font, anchor="rb")
    for index, (name, label, colour) in enumerate(SERIES):
        points = [(x_of(n), y_of(by_concurrency[str(n)][name])) for n in levels]
        draw.line(points, fill=colour, width=3)
        for x, y in points:
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
        legend_y = TOP + 14 + 20 * index
        draw.line((LEFT + 14, legend_y, LEFT + 40, legend_y), fill=colour, width=3)
        draw.text((LEFT + 48, legend_y), label, fill="black", font=small, anchor="lm")
    image.save(path)


LATENCY_COLOURS = ((30, 110, 200), (220, 90, 40), (60, 160, 80), (120, 120, 120))


def latency_distribution(series: dict[str, list[float]], path: Path, title: str) -> None:
    """The share of events (y) delivered within a latency (x, ms, log scale), one line a series."""
    low = max(0.1, min(min(values) for values in series.values()))
    high = max(max(values) for values in series.values())
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    x_min, x_max = 10 ** decades[0], 10 ** decades[-1]
    image = Image.new("RGB", (WIDTH, HEIGHT + 20 * len(series) + 10), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=16), ImageFont.load_default(size=13)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(ms: float) -> float:
        return LEFT + plot_w * math.log10(max(ms, x_min) / x_min) / math.log10(x_max / x_min)

    def y_of(share: float) -> float:
        return TOP + plot_h * (1 - share)

    draw.text((WIDTH / 2, 22), title, fill="black", font=font, anchor="mm")
    for tick in (0, 0.25, 0.5, 0.75, 0.9, 1):
        y = y_of(tick)
        draw.line((LEFT, y, WIDTH - RIGHT, y), fill=(230, 230, 230))
        draw.text((LEFT - 8, y), f"{tick:.0%}", fill="black", font=small, anchor="rm")
    for decade in decades:
        x = x_of(10**decade)
        draw.line((x, TOP, x, TOP + plot_h), fill=(240, 240, 240))
        draw.text((x, TOP + plot_h + 8), f"{10**decade:g}", fill="black", font=small, anchor="mt")
    draw.rectangle((LEFT, TOP, LEFT + plot_w, TOP + plot_h), outline="black")
    draw.text(
        (LEFT + plot_w / 2, HEIGHT - 22), "latency, ms (log scale)", fill="black", font=font, anchor="mm"
    )
    draw.text((LEFT, TOP - 10), "share of events delivered within", fill="black", font=font, anchor="lb")
    for index, values in enumerate(series.values()):
        ordered = sorted(values)
        points = [(x_of(ms), y_of((rank + 1) / len(ordered))) for rank, ms in enumerate(ordered)]
        draw.line(points, fill=LATENCY_COLOURS[index % len(LATENCY_COLOURS)], width=3)
    for index, label in enumerate(series):  # the legend, under the plot
        colour = LATENCY_COLOURS[index % len(LATENCY_COLOURS)]
        legend_y = HEIGHT + 4 + 20 * index
        draw.line((LEFT + 14, legend_y, LEFT + 40, legend_y), fill=colour, width=3)
        draw.text((LEFT + 48, legend_y), label, fill="black", font=small, anchor="lm")
    image.save(path)


def _nice_step(raw: float) -> float:
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
