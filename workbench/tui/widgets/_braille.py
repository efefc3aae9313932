"""A braille line chart: curves drawn as dots, an L-shaped axis with tick labels.

A plot area of W×H terminal cells is a 2W×4H grid of dots (one braille character holds 2×4).
Each series' segments are clipped to the plot and rasterised into dots with numpy (every
segment of every series at once), then each cell becomes one braille character — the dots of
every series there — coloured by the last series drawn there (later series are on top: the
pinned run goes last). The axes and labels are plain text around it.

The result is rows of ``(text, style key)`` runs: a series' key is whatever the caller gave as
its colour; the frame uses :data:`AXIS`, :data:`CURSOR` and :data:`TEXT`. No textual here, so
the tests check the dots directly; the chart widget turns the runs into styled segments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["AXIS", "CURSOR", "TEXT", "Frame", "Series", "nice_ticks", "render", "tick_text"]

#: Style key of the axis lines and tick labels.
AXIS = "axis"
#: Style key of the cursor's vertical line.
CURSOR = "cursor"
#: Style key of a message shown in place of curves ("no points yet").
TEXT = "text"

# The bit of each dot of a braille cell, by (row in the cell, column in the cell).
_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))

Runs = list[tuple[str, Hashable]]
TickMaker = Callable[[float, float, int], tuple[Sequence[float], Sequence[str]]]


@dataclass(frozen=True)
class Series:
    """One curve: its points (x ascending) and the key of its colour."""

    xs: Sequence[float]
    ys: Sequence[float]
    color: Hashable


@dataclass
class Frame:
    """A rendered chart.

    Attributes:
        rows: One list of ``(text, style key)`` runs per terminal row, each row ``width`` cells.
        left: Columns left of the plot area (tick labels and the axis).
        plot_width: Columns of the plot area.
        x_range: The x span the plot area shows (left edge to right edge), or None.
        y_range: The y span shown (bottom to top), or None; in log10 units on a log axis.
    """

    rows: list[Runs]
    left: int = 0
    plot_width: int = 0
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None

    def text(self) -> list[str]:
        """The rows as plain text (tests, debugging)."""
        return ["".join(t for t, _ in row) for row in self.rows]


def render(series: Sequence[Series], width: int, height: int, *, x_range: tuple[float, float] | None = None,
           y_range: tuple[float, float] | None = None, log_y: bool = False, x_ticks: TickMaker | None = None,
           cursor: float | None = None, message: str = "") -> Frame:
    """Draw ``series`` into a chart of ``width`` × ``height`` cells.

    Args:
        series: The curves, bottom first (the last is on top where curves share a cell).
        width: Columns of the whole chart, labels included.
        height: Rows of the whole chart (the x axis and its labels take the last two).
        x_range: The x span to show; points outside it are clipped. None: every point's.
        y_range: The y span to show (data units, also on a log axis); None: every point's.
        log_y: A log10 y axis (points at or below zero are left out).
        x_ticks: Makes ``(ticks, labels)`` for an x span and a tick count; None: :func:`nice_ticks`.
        cursor: An x to mark with a vertical line (under the curves).
        message: Shown in the middle of the plot area (with no points: why).

    Returns:
        The :class:`Frame`.
    """
    width, height = max(0, width), max(0, height)
    keys: list[Hashable] = [CURSOR]
    arrays = _gather(series, keys, log_y) if any(min(len(s.xs), len(s.ys)) for s in series) else None
    if arrays is not None:
        x, y, ids = arrays
        if x_range is None and len(x):
            x_range = (float(x.min()), float(x.max()))
    if y_range is not None and log_y:
        y_range = (math.log10(y_range[0]), math.log10(y_range[1])) if y_range[0] > 0 < y_range[1] else None
    if y_range is None and x_range is not None and arrays is not None:
        inside = y[(x >= x_range[0]) & (x <= x_range[1])]
        if len(inside):
            y_range = (float(inside.min()), float(inside.max()))
    if height < 3 or width < 4:
        return Frame(rows=[[(" " * width, None)] for _ in range(height)])
    plot_h = height - 2
    y_lo, y_hi = _widen(y_range) if y_range is not None else (0.0, 1.0)
    y_ticks = _y_ticks(y_lo, y_hi, plot_h, log_y) if y_range is not None else []
    label_w = max((len(t) for _, t in y_ticks), default=0)
    left = label_w + 1
    plot_w = width - left
    if plot_w < 2:
        left, label_w, plot_w, y_ticks = 1, 0, width - 1, []
    x_lo, x_hi = _widen(x_range) if x_range is not None else (0.0, 1.0)

    x_scale, y_scale = (2 * plot_w - 1) / (x_hi - x_lo), (4 * plot_h - 1) / (y_hi - y_lo)

    def col_of(value: float) -> float:  # dot column
        return (value - x_lo) * x_scale

    def row_of(value: float) -> float:  # dot row, 0 at the top
        return (y_hi - value) * y_scale

    if arrays is None:  # nothing to draw: no numpy (the first paint comes before any curve)
        plot_rows: list[Runs] = [[(" " * plot_w, None)] for _ in range(plot_h)]
    else:
        import numpy as np

        cols, rows_ = (x - x_lo) * x_scale, (y_hi - y) * y_scale
        if cursor is not None and x_range is not None and x_lo <= cursor <= x_hi:
            c = float(round(col_of(cursor)))
            cols = np.concatenate([[c, c], cols])
            rows_ = np.concatenate([[0.0, 4 * plot_h - 1.0], rows_])
            ids = np.concatenate([[0, 0], ids])
        dot_ids, dot_c, dot_r = _raster(ids, cols, rows_, 2 * plot_w, 4 * plot_h)
        plot_rows = _cells_to_runs(*_compose(dot_ids, dot_c, dot_r, plot_w, plot_h), keys, plot_w,
                                   plot_h)
    if message:
        _put_message(plot_rows, message, plot_w, plot_h)

    # The y axis: labels right-aligned at their rows, ┤ at a tick, │ elsewhere.
    labels: dict[int, str] = {}
    for value, text in y_ticks:
        r = int(round(row_of(value) / 4 - 0.375))
        if 0 <= r < plot_h and r not in labels:
            labels[r] = text
    rows: list[Runs] = []
    for r in range(plot_h):
        head = (labels[r].rjust(label_w) + "┤") if r in labels else " " * label_w + "│"
        rows.append([(" " * (left - 1 - label_w) + head, AXIS), *plot_rows[r]])
    rows += _x_axis(x_range, x_lo, x_hi, col_of, x_ticks, left, plot_w)
    shown_x = (x_lo, x_hi) if x_range is not None else None
    shown_y = (y_lo, y_hi) if y_range is not None else None
    return Frame(rows=rows, left=left, plot_width=plot_w, x_range=shown_x, y_range=shown_y)


def _gather(series: Sequence[Series], keys: list[Hashable], log_y: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every series' points in one set of arrays (numpy pays per call, not per point): x, y (log10
    on a log axis) and whose point each is, as an index into ``keys`` (which this extends; 0 is
    the cursor, drawn first: under the curves). Points that cannot be drawn are left out."""
    import numpy as np

    xs, ys, lengths = [], [], []
    for s in series:
        n = min(len(s.xs), len(s.ys))
        if n:
            xs.append(np.asarray(s.xs, dtype=np.float64)[:n])
            ys.append(np.asarray(s.ys, dtype=np.float64)[:n])
            keys.append(s.color)
            lengths.append(n)
    x, y = np.concatenate(xs), np.concatenate(ys)
    ids = np.repeat(np.arange(1, len(keys)), lengths)
    if log_y:
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep], ids[keep]


def _widen(span: tuple[float, float]) -> tuple[float, float]:
    """A span with room in it: a single value becomes a small span around it."""
    low, high = float(span[0]), float(span[1])
    if high > low:
        return low, high
    pad = abs(low) * 0.1 or 1.0
    return low - pad, high + pad


def _raster(ids: np.ndarray, cols: np.ndarray, rows: np.ndarray, dots_w: int,
            dots_h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dots of the polylines through ``(cols, rows)`` (consecutive points with the same id
    are one line), clipped to the dot grid: ``(id, column, row)`` per dot. A line of one point
    is one dot."""
    import numpy as np

    same = ids[:-1] == ids[1:]
    alone = np.ones(len(ids), dtype=bool)  # a point with no neighbour of its line: a segment to itself
    alone[:-1] &= ~same
    alone[1:] &= ~same
    start = np.concatenate([np.flatnonzero(same), np.flatnonzero(alone)])
    end = np.concatenate([np.flatnonzero(same) + 1, np.flatnonzero(alone)])
    x0, y0, x1, y1 = cols[start], rows[start], cols[end], rows[end]
    seg_ids = ids[start]
    out = (cols < -0.5) | (cols > dots_w - 0.5) | (rows < -0.5) | (rows > dots_h - 0.5)
    if out.any():  # clip only the segments that leave the grid (most stay inside)
        leaves = out[start] | out[end]
        cx0, cy0, cx1, cy1, kept = _clip(x0[leaves], y0[leaves], x1[leaves], y1[leaves], dots_w, dots_h)
        stay = ~leaves
        x0, y0 = np.concatenate([x0[stay], cx0]), np.concatenate([y0[stay], cy0])
        x1, y1 = np.concatenate([x1[stay], cx1]), np.concatenate([y1[stay], cy1])
        seg_ids = np.concatenate([seg_ids[stay], seg_ids[leaves][kept]])
    steps = np.maximum(np.ceil(np.maximum(np.abs(x1 - x0), np.abs(y1 - y0))).astype(np.int64), 1)
    seg = np.repeat(np.arange(len(steps)), steps + 1)
    starts = np.cumsum(steps + 1) - (steps + 1)
    t = (np.arange(len(seg)) - starts[seg]) / steps[seg]
    c = np.rint(x0[seg] + (x1 - x0)[seg] * t).astype(np.int64)
    r = np.rint(y0[seg] + (y1 - y0)[seg] * t).astype(np.int64)
    keep = (c >= 0) & (c < dots_w) & (r >= 0) & (r < dots_h)
    return seg_ids[seg][keep], c[keep], r[keep]


def _clip(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, w: int,
          h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Liang–Barsky over every segment at once: the part of each inside the grid (half a dot
    of slack), and which segments are kept: those wholly outside are dropped, so an off-scale
    spike costs no dots."""
    import numpy as np

    dx, dy = x1 - x0, y1 - y0
    t0 = np.zeros_like(x0)
    t1 = np.ones_like(x0)
    ok = np.ones(len(x0), dtype=bool)
    for p, q in ((-dx, x0 + 0.5), (dx, w - 0.5 - x0), (-dy, y0 + 0.5), (dy, h - 0.5 - y0)):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = q / p
        parallel = p == 0
        ok &= ~(parallel & (q < 0))
        entering = p < 0
        t0 = np.where(~parallel & entering, np.maximum(t0, ratio), t0)
        t1 = np.where(~parallel & ~entering, np.minimum(t1, ratio), t1)
    ok &= t0 <= t1
    x0, y0, dx, dy, t0, t1 = x0[ok], y0[ok], dx[ok], dy[ok], t0[ok], t1[ok]
    return x0 + dx * t0, y0 + dy * t0, x0 + dx * t1, y0 + dy * t1, ok


def _compose(ids: np.ndarray, c: np.ndarray, r: np.ndarray, plot_w: int, plot_h: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: the braille bits of every layer's dots there, and the index of the top (last)
    layer with a dot there (-1: none)."""
    import numpy as np

    cells = plot_w * plot_h
    at = (r >> 2) * plot_w + (c >> 1)
    bits = np.zeros(cells, dtype=np.uint8)
    np.bitwise_or.at(bits, at, np.array(_BITS, dtype=np.uint8)[r & 3, c & 1])
    # Layers are numbered bottom first, so the top one at a cell is the highest there.
    top = np.full(cells, -1, dtype=np.int64)
    np.maximum.at(top, at, ids)
    return bits, top


def _cells_to_runs(bits: np.ndarray, top: np.ndarray, keys: list[Hashable], plot_w: int,
                   plot_h: int) -> list[Runs]:
    """Rows of runs: every layer's dots merged into one braille character per cell, coloured
    by the top layer there; cells without dots are spaces."""
    import numpy as np

    codes = np.where(top >= 0, 0x2800 + bits.astype(np.uint32), 0x20).astype("<u4")
    text = codes.tobytes().decode("utf-32-le")
    grid = top.reshape(plot_h, plot_w)
    # Where the colour changes within a row: the start of a run.
    row_of, col_of = np.nonzero(grid[:, 1:] != grid[:, :-1])
    cuts: list[list[int]] = [[] for _ in range(plot_h)]
    for r, c in zip(row_of.tolist(), (col_of + 1).tolist()):
        cuts[r].append(c)
    owner = top.tolist()
    out: list[Runs] = []
    for r in range(plot_h):
        base = r * plot_w
        bounds = [0, *cuts[r], plot_w]
        out.append([(text[base + a:base + b], keys[owner[base + a]] if owner[base + a] >= 0 else None)
                    for a, b in zip(bounds, bounds[1:])])
    return out


def _put_message(rows: list[Runs], message: str, plot_w: int, plot_h: int) -> None:
    text = message[:plot_w]
    pad = (plot_w - len(text)) // 2
    rows[(plot_h - 1) // 2] = [(" " * pad, None), (text, TEXT), (" " * (plot_w - pad - len(text)), None)]


def _x_axis(x_range: tuple[float, float] | None, x_lo: float, x_hi: float, col_of: Callable[[float], float],
            x_ticks: TickMaker | None, left: int, plot_w: int) -> list[Runs]:
    """The x axis line (└──┬──) and the tick labels under it, centred on their ticks where
    they fit, never overlapping."""
    line = ["─"] * plot_w
    under = [" "] * (left + plot_w)
    if x_range is not None:
        count = max(2, min(6, (left + plot_w) // 12))
        ticks, texts = (x_ticks or nice_ticks)(x_range[0], x_range[1], count)
        taken = -1
        for value, text in zip(ticks, texts):
            if not x_lo <= value <= x_hi:
                continue
            c = int(col_of(value) // 2)
            if not 0 <= c < plot_w:
                continue
            start = min(max(left + c - (len(text) - 1) // 2, 0), left + plot_w - len(text))
            if start <= taken or start < 0:
                continue
            line[c] = "┬"
            under[start:start + len(text)] = list(text)
            taken = start + len(text)
    axis = " " * (left - 1) + "└" + "".join(line)
    return [[(axis, AXIS)], [("".join(under), AXIS)]]


def nice_ticks(low: float, high: float, count: int) -> tuple[list[float], list[str]]:
    """About ``count`` ticks at round values (1, 2 or 5 times a power of ten) in ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low], [tick_text(low, 1.0)]
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    first = math.ceil(low / step - 1e-9)
    ticks = [k * step for k in range(first, int(math.floor(high / step + 1e-9)) + 1)]
    return ticks, [tick_text(t, step) for t in ticks]


def tick_text(value: float, step: float) -> str:
    """A tick's label: as many decimals as the spacing needs, ``1.5e-05`` style when tiny or huge."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-4 or step < 1e-4:
        return f"{value:.2g}" if abs(step / value) > 0.05 else f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if _mantissa(step) == 2.5 else 0)
    return f"{value:.{decimals}f}"


def _mantissa(step: float) -> float:
    return round(step / 10 ** math.floor(math.log10(step) + 1e-9), 6)


def _y_ticks(y_lo: float, y_hi: float, plot_h: int, log_y: bool) -> list[tuple[float, str]]:
    """The y ticks (in axis units) and their labels: about one per three rows, and at least two
    where the plot has the rows for them (one label alone does not say the scale)."""
    count = max(3, min(8, plot_h // 3 + 1))
    if log_y:
        decades = list(range(math.ceil(y_lo - 1e-9), math.floor(y_hi + 1e-9) + 1))
        if len(decades) >= 2:
            stride = max(1, math.ceil(len(decades) / count))
            return [(float(d), _decade_text(d)) for d in decades[::stride]]
    low, high = (10 ** y_lo, 10 ** y_hi) if log_y else (y_lo, y_hi)
    out: list[tuple[float, str]] = []
    for asked in range(count, count + 8):
        ticks, texts = nice_ticks(low, high, asked)
        out = [(math.log10(t) if log_y else t, text) for t, text in zip(ticks, texts) if t > 0 or not log_y]
        if len(out) >= 2:
            break
    return out


def _decade_text(power: int) -> str:
    return f"{10.0 ** power:g}" if -3 <= power <= 4 else f"1e{power}"
