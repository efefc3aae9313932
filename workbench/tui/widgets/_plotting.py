"""What a chart computes before it draws (``_braille``): smoothing, the y range, axis ticks,
faint colours.

Pure functions over plain lists (no textual), so the tests check them directly.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from dataclasses import dataclass

from workbench.store import TIME_KEYED_PREFIX

__all__ = [
    "SKIP_START",
    "SMOOTHING",
    "ChartOptions",
    "clock_text",
    "ema",
    "faint",
    "int_ticks",
    "match_keys",
    "order_keys",
    "prefer_keys",
    "time_keyed",
    "time_ticks",
    "y_range",
    "zoom_window",
]

#: The smoothing weights ``e`` cycles through (0: raw curves only).
SMOOTHING = (0.0, 0.6, 0.9, 0.99)
#: With the spike ignored, the y range leaves out this fraction of each curve's x span at its start.
SKIP_START = 0.05
#: A zoomed window spans at least this many x units (steps, or seconds on a time axis).
MIN_ZOOM_SPAN = 4.0


@dataclass
class ChartOptions:
    """How a screen's charts draw; the charts of one screen share one (a key changes them all).

    Attributes:
        x_axis: ``"step"`` or ``"time"`` (time-keyed metrics, ``sys/*``, always use time).
        log_scale: A log y axis.
        smoothing: The exponential moving average's weight (0: none).
        skip_start: Fit the y range to the points after the first 5% of each curve's x span.
        x_range: The zoomed x window ``(low, high)``, or None for every point. It applies to
            the charts whose x axis is ``zoom_axis`` (a step window means nothing on a time axis).
        zoom_axis: The axis ``x_range`` is on.
    """

    x_axis: str = "step"
    log_scale: bool = False
    smoothing: float = 0.0
    skip_start: bool = False
    x_range: tuple[float, float] | None = None
    zoom_axis: str = "step"

    def window(self, axis: str) -> tuple[float, float] | None:
        """The zoomed x window of a chart on ``axis`` (None: not zoomed)."""
        return self.x_range if self.x_range is not None and axis == self.zoom_axis else None

    def next_smoothing(self) -> float:
        """Step to the next weight of :data:`SMOOTHING` (after the last: none)."""
        now = SMOOTHING.index(self.smoothing) if self.smoothing in SMOOTHING else -1
        self.smoothing = SMOOTHING[(now + 1) % len(SMOOTHING)]
        return self.smoothing

    def flags(self, key: str | None) -> list[str]:
        """The words the chart's title shows for these options (``time log ema 0.9 y>5%``)."""
        out = ["time" if key is not None and time_keyed(key) else self.x_axis]
        if self.log_scale:
            out.append("log")
        if self.smoothing:
            out.append(f"ema {self.smoothing:g}")
        if self.skip_start:
            out.append("y>5%")
        window = self.window("time" if key is not None and time_keyed(key) else self.x_axis)
        if window is not None:
            low, high = window
            shown = (clock_text(low), clock_text(high)) if self.zoom_axis == "time" else \
                (_short_int(int(round(low))), _short_int(int(round(high))))
            out.append(f"zoom {shown[0]}–{shown[1]}")
        return out


def time_keyed(key: str) -> bool:
    """Whether a metric is stored against time (system metrics), so charted against time only."""
    return key.startswith(TIME_KEYED_PREFIX)


def ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start.

    With ``weight`` 0.9 each point is 10% its own value and 90% the average before it; the
    first points are divided by ``1 - weight**n`` so the curve does not start at zero.
    """
    if not weight or not values:
        return list(values)
    out = []
    last = 0.0
    for n, value in enumerate(values, start=1):
        last = last * weight + (1 - weight) * value
        out.append(last / (1 - weight ** n))
    return out


def zoom_window(full: tuple[float, float], now: tuple[float, float] | None, centre: float | None,
                factor: float) -> tuple[float, float] | None:
    """The x window after zooming by ``factor`` (0.5: in, twice as close; 2: out) around ``centre``.

    Args:
        full: The x span of every point (the window never leaves it).
        now: The window shown now (None: the full span).
        centre: The x to keep in place (the cursor's); None: the middle of ``now``.
        factor: How much wider the new window is than ``now``.

    Returns:
        The new window, or None when it would show every point (zoomed all the way out).
    """
    low, high = full
    if high <= low:
        return None
    start, end = now if now is not None else full
    span = max(min(high - low, MIN_ZOOM_SPAN), (end - start) * factor)
    if span >= high - low:
        return None
    if centre is None:
        centre = (start + end) / 2
    # The centre keeps its place in the window: zoom in on the cursor, not past it.
    share = (centre - start) / (end - start) if end > start else 0.5
    share = max(0.0, min(1.0, share))
    left = centre - share * span
    left = max(low, min(left, high - span))
    return left, left + span


def y_range(curves: list[tuple[list[float], list[float]]], log: bool) -> tuple[float, float] | None:
    """The y range of the points after the first 5% of each curve's x span (a start spike
    left out), padded by 5%; None when too few points remain to say."""
    low, high = math.inf, -math.inf
    for xs, ys in curves:
        if len(xs) < 3:
            continue
        cut = xs[0] + SKIP_START * (xs[-1] - xs[0])
        # At least the first point goes: a short curve's spike is its first point.
        kept = [y for n, (x, y) in enumerate(zip(xs, ys)) if n > 0 and x >= cut]
        if kept:
            low, high = min(low, *kept), max(high, *kept)
    if not math.isfinite(low) or not math.isfinite(high):
        return None
    if log:
        if low <= 0:
            return None
        span = math.log10(high) - math.log10(low) or 1.0
        return 10 ** (math.log10(low) - 0.05 * span), 10 ** (math.log10(high) + 0.05 * span)
    span = (high - low) or abs(high) or 1.0
    return low - 0.05 * span, high + 0.05 * span


def int_ticks(low: float, high: float, count: int) -> tuple[list[int], list[str]]:
    """Whole-number ticks for a step axis (round ticks alone could label a step 27.5)."""
    low_i, high_i = int(math.floor(low)), int(math.ceil(high))
    if high_i <= low_i:
        return [low_i], [str(low_i)]
    raw = (high_i - low_i) / max(1, count - 1)
    magnitude = 10 ** int(math.floor(math.log10(raw))) if raw >= 1 else 1
    nice = [max(1, int(m * magnitude)) for m in (0.5, 1, 2, 2.5, 5, 10)]
    step = next(n for n in nice if n >= raw)
    ticks = _ticks_every(low_i, high_i, step)
    # A narrow chart (few ticks asked) can fall between two nice steps: 1..74 in 3 ticks gives
    # only 50; a smaller step gives two or more.
    for smaller in reversed([n for n in nice if n < step]):
        if len(ticks) >= min(2, count):
            break
        ticks = _ticks_every(low_i, high_i, smaller)
    return ticks, [_short_int(t) for t in ticks]


def _ticks_every(low: int, high: int, step: int) -> list[int]:
    first = low - low % step
    return [t for t in range(first, high + step, step) if low <= t <= high]


#: Tick spacings of a time axis, in seconds.
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def time_ticks(low: float, high: float, count: int) -> tuple[list[float], list[str]]:
    """Ticks for a time axis (seconds since the curve began), labelled ``h:mm:ss``."""
    if high <= low:
        return [low], [clock_text(low)]
    raw = (high - low) / max(1, count - 1)
    step = next((s for s in _TIME_STEPS if s >= raw), _TIME_STEPS[-1] * math.ceil(raw / _TIME_STEPS[-1]))
    first = math.ceil(low / step) * step
    ticks = []
    tick = first
    while tick <= high + 1e-9:
        ticks.append(float(tick))
        tick += step
    return ticks, [clock_text(t) for t in ticks]


def clock_text(seconds: float) -> str:
    """``h:mm:ss`` (``27:04:05`` past a day; never days)."""
    value = int(round(seconds))
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 3600}:{value % 3600 // 60:02d}:{value % 60:02d}"


def faint(rgb: tuple[int, int, int], background: tuple[int, int, int], amount: float = 0.35) -> tuple[int, int, int]:
    """A run's colour mixed into the background (``amount`` of the colour): the raw curve
    behind a smoothed one."""
    return tuple(round(b + (c - b) * amount) for c, b in zip(rgb, background))  # type: ignore[return-value]


def _short_int(value: int) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1e6:g}M"
    if abs(value) >= 10_000:
        return f"{value / 1e3:g}k"
    return str(value)


def order_keys(keys: Iterable[str]) -> list[str]:
    """Metric keys as charts list them: losses first (validation before training), then the
    rest by name, system metrics (``sys/*``) last."""
    return sorted(set(keys), key=lambda k: (time_keyed(k), "loss" not in k, not k.startswith("val"), k))


def prefer_keys(keys: list[str], preferred: list[str]) -> list[str]:
    """``keys`` with those matching ``preferred`` (keys or globs, the settings' ``chart_keys``)
    first, in the order ``preferred`` names them; the rest keep their order."""
    first: list[str] = []
    for pattern in preferred:
        first += [k for k in match_keys(keys, pattern) if k not in first]
    return first + [k for k in keys if k not in first]


def match_keys(keys: list[str], text: str) -> list[str]:
    """The keys that match any word of ``text``: a glob where it has ``* ? [``, else a substring."""
    terms = text.split()
    if not terms:
        return list(keys)
    return [k for k in keys if any(fnmatch.fnmatch(k, t) if any(c in t for c in "*?[") else t in k for t in terms)]
