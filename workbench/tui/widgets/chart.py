"""A metric chart: one key, one curve per run in the run's colour, with a cursor.

The chart asks the app's series cache for its curves at its own width (the store
downsamples them to that many points, keeping each bucket's min and max), so drawing costs
the same for a hundred points or ten million. Left and right move a cursor along the
steps (shift: faster); the line under the chart shows the step and every run's value there, in
its colour ("—" for a run whose curve does not reach that step: never a value past its end).
``l`` toggles a log y axis, ``x`` switches the x axis between step and time, ``e`` cycles the
smoothing (an exponential moving average, the raw curve faint behind it), ``y`` fits the y
range to the points after the first 5% of the x span (a start spike left out), ``+``/``-``
zoom the x axis in and out around the cursor and ``0`` shows every step again. The charts
of one screen share their :class:`ChartOptions`, so a key changes all of them. System metrics
(``sys/*``, stored against time) are always charted against time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.content import Content
from textual.widgets import Static

from workbench.runs import present
from workbench.tui._state import SeriesCache
from workbench.tui._watcher import SeriesKey
from workbench.tui.colors import RunColors
from workbench.tui.messages import ChartCursorMoved
from workbench.tui.widgets._braille import Frame, Series, render
from workbench.tui.widgets._chart_plot import Plot as _Plot
from workbench.tui.widgets._kept import KeptLines, KeptStatic
from workbench.tui.widgets._plotting import (
    ChartOptions,
    clock_text,
    ema,
    faint,
    int_ticks,
    time_keyed,
    time_ticks,
    y_range,
    zoom_window,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ChartOptions", "MetricChart", "zoom_charts"]


class MetricChart(KeptLines, Vertical, can_focus=True):
    """Curves of one metric key for one or more runs.

    Args:
        series: The app's series cache (the chart registers what it shows there).
        colors: The app's run colours.
        names: Maps a run id to the name shown in the legend.
        request: Called when the chart needs a read now (a new curve or a wider chart).
        pinned: Returns the pinned run (drawn last, so on top), or None.
        legend: Name the runs above the plot (off where a screen shows one legend for all).
        options: How to draw, shared by the charts of a screen (a new one when None).
        pane: The number key that jumps to this chart (shown before its title), or "".
    """

    DEFAULT_CSS = """
    MetricChart { height: 1fr; }
    MetricChart > .chart-legend { height: 1; }
    MetricChart > .chart-readout { height: 1; color: $text-muted; }
    MetricChart > .chart-plot { height: 1fr; }
    MetricChart:focus > .chart-legend { text-style: bold; background: $boost; }
    """

    _ready = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Cursor left", show=False),
        Binding("right", "move(1)", "Cursor right", show=False),
        Binding("shift+left", "move(-10)", "Cursor far left", show=False),
        Binding("shift+right", "move(10)", "Cursor far right", show=False),
        Binding("escape", "clear_cursor", "Hide cursor", show=False),
        # Not in the footer: the line under a focused chart names them (the footer has no room).
        Binding("l", "toggle_log", "Log scale", show=False),
        Binding("x", "toggle_x", "Step/time", show=False),
        Binding("e", "smoothing", "Smoothing", show=False),
        Binding("y", "skip_start", "Y range without the start", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in: half the steps, around the cursor", key_display="+",
                show=False),
        Binding("minus", "zoom(2)", "Zoom out: twice the steps", key_display="-", show=False),
        Binding("0", "zoom(0)", "Zoom reset: every step", key_display="0", show=False),
    ]

    def __init__(self, series: SeriesCache, colors: RunColors, names: Callable[[str], str],
                 request: Callable[[], None], *, pinned: Callable[[], str | None] = lambda: None,
                 legend: bool = True, options: ChartOptions | None = None, id: str | None = None,
                 classes: str | None = None, pane: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.pane = pane
        self.cache = series
        self.run_colors = colors
        self.names = names
        self.request = request
        self.pinned = pinned
        self.legend = legend
        self.key: str | None = None
        self.run_ids: list[str] = []
        self.options = options if options is not None else ChartOptions()
        self.cursor: int | None = None  # an index into self._xs
        self.title_prefix = ""
        self._xs_list: list[float] | None = []
        self._xs_from: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        self._width = 0
        self._drawn: tuple[Any, ...] | None = None
        self._labels: tuple[Any, ...] | None = None
        self._labels_for: tuple[Any, ...] | None = None
        self._wanted_kept: tuple[Any, ...] | None = None
        self._asked_axis = self.axis
        self._margin = (7, 0)  # the plot area's left margin and width, known once drawn

    @property
    def _xs(self) -> list[float]:
        """Every x of the curves last drawn, once each, ascending (where the cursor can stop)."""
        if self._xs_list is None:
            self._xs_list, self._xs_from = _steps_of(self._xs_from), []
        return self._xs_list

    @_xs.setter
    def _xs(self, xs: list[float]) -> None:
        self._xs_list, self._xs_from = xs, []

    @property
    def axis(self) -> str:
        """This chart's x axis: time for a time-keyed metric (``sys/*``), else the options'."""
        return "time" if self.key is not None and time_keyed(self.key) else self.options.x_axis

    @property
    def x_axis(self) -> str:
        """The x axis the options ask for (``step`` or ``time``)."""
        return self.options.x_axis

    @property
    def log_scale(self) -> bool:
        """Whether the y axis is logarithmic."""
        return self.options.log_scale

    def compose(self) -> ComposeResult:
        yield KeptStatic(classes="chart-legend")
        self._plot = _Plot(self)
        yield self._plot
        yield KeptStatic(classes="chart-readout")

    # -- what to show ----------------------------------------------------------------

    def show(self, key: str | None, run_ids: list[str], title_prefix: str = "") -> None:
        """Show ``key`` for these runs."""
        if (key, run_ids, title_prefix) == (self.key, self.run_ids, self.title_prefix):
            return
        if key != self.key and self.cursor is not None:
            self.cursor = None
            self.refresh_bindings()
        self.key, self.run_ids, self.title_prefix = key, list(run_ids), title_prefix
        self._want()
        self.data_changed(None)

    @property
    def wanted(self) -> list[SeriesKey]:
        """The curves this chart draws."""
        return list(self._wanted()[1])

    def _wanted(self) -> tuple[Any, frozenset[SeriesKey] | tuple[SeriesKey, ...]]:
        # Kept while the key, runs and axis are the same (asked by every tick's data_changed).
        basis = (self.key, tuple(self.run_ids), self.axis)
        kept = self._wanted_kept
        if kept is None or kept[0] != basis:
            curves = () if self.key is None else tuple(SeriesKey(r, self.key, self.axis) for r in self.run_ids)
            kept = self._wanted_kept = (basis, curves, frozenset(curves))
        return kept[2], kept[1]

    def _want(self) -> None:
        self._asked_axis = self.axis
        if not self._ready:
            return
        width = max(16, self._width or self.size.width)
        if self.cache.want(self, {s: width for s in self.wanted}):
            self.request()

    def resized(self, width: int) -> None:
        """The plot area changed size: ask for curves that match the new width."""
        if width != self._width:
            self._width = width
            self._want()

    def on_mount(self) -> None:
        self._ready = True
        self._want()
        self._update_labels()

    def on_unmount(self) -> None:
        self.cache.drop(self)

    def data_changed(self, changed: set[SeriesKey] | None) -> None:
        """Repaint when one of this chart's curves changed (``None``: repaint anyway)."""
        if changed is not None and changed.isdisjoint(self._wanted()[0]):
            return
        if self.axis != self._asked_axis:  # the shared options changed the x axis
            self._want()
        self._update_labels()
        if self._ready:
            self._plot.refresh()

    # -- drawing ---------------------------------------------------------------------

    def _curves(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(run_id, xs, ys)`` of each run with points, the pinned run last (drawn on top); the
        points a log axis cannot show (and any NaN) left out; time from the curve's start."""
        pinned = self.pinned()
        order = sorted(self.run_ids, key=lambda r: r == pinned)  # the pinned run last: on top
        found = [(run_id, data) for run_id in order
                 if (data := self.cache.data.get(SeriesKey(run_id, self.key or "", self.axis))) is not None
                 and data.points]
        if not found:
            return []
        import numpy as np  # not before there is a curve: the first paint comes before any

        # Every curve's points in one array (numpy pays per call, and a grid draws 72 curves a
        # tick), then a view of it per curve. (Each curve's array is kept by the cache.)
        sizes = [len(data.points) for _, data in found]
        offsets = list(accumulate(sizes, initial=0))
        points = np.concatenate([data.xy() for _, data in found])
        xs, ys = points[:, 0], points[:, 1]
        if self.axis == "time":  # from each curve's start
            xs = xs - np.repeat(xs[offsets[:-1]], sizes)
        keep = np.isfinite(ys) & (ys > 0) if self.log_scale else np.isfinite(ys)
        every = bool(keep.all())
        curves = []
        for (run_id, _), start, end in zip(found, offsets, offsets[1:]):
            if every:
                curves.append((run_id, xs[start:end], ys[start:end]))
            else:
                kept = keep[start:end]
                curves.append((run_id, xs[start:end][kept], ys[start:end][kept]))
        return curves

    def _shown_curves(self) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        """``(run_id, xs, ys, smoothed ys)`` of the points in the zoomed window (all: not zoomed).
        The smoothing runs over the whole curve first, so a window does not restart it."""
        window = self.options.window(self.axis)
        out = []
        for run_id, cx, cy in self._curves():
            sy = cy  # (not changed in place below: a window makes new arrays)
            if self.options.smoothing:
                sy = cy.copy()
                sy[:] = ema(cy.tolist(), self.options.smoothing)
            if window is not None:
                keep = (cx >= window[0]) & (cx <= window[1])
                cx, cy, sy = cx[keep], cy[keep], sy[keep]
            out.append((run_id, cx, cy, sy))
        return out

    def full_span(self) -> tuple[float, float] | None:
        """The x span of every point this chart has (zoom or not), or None without points."""
        spans = [(float(cx[0]), float(cx[-1])) for _, cx, _ in self._curves() if len(cx)]
        return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None

    def draw(self, width: int, height: int) -> Frame:
        """Draw the curves into a frame of ``width`` × ``height`` cells (called by the plot area
        as it paints): the raw curves first and faint when smoothing, the pinned run last."""
        curves = self._shown_curves()
        options = self.options
        window = options.window(self.axis)
        series = []
        if options.smoothing:  # the raw curves first, faint, so that every smoothed one is above them
            background = self.run_colors.background
            series += [Series(cx, cy, faint(self.run_colors.rgb(run_id), background))
                       for run_id, cx, cy, _ in curves if len(cx)]
        series += [Series(cx, sy, self.run_colors.rgb(run_id)) for run_id, cx, _, sy in curves if len(cx)]
        # Where the cursor can stop: worked out from these curves when first asked for (most
        # draws show no cursor); the x span needs only the smallest and largest x.
        self._xs_list, self._xs_from = None, curves
        span = _span_of(curves)
        x_range = window if window is not None else span
        limits = y_range([(cx.tolist(), cy.tolist()) for _, cx, cy, _ in curves], self.log_scale) \
            if options.skip_start else None
        cursor = None
        if self.cursor is not None and self._xs:
            self.cursor = max(0, min(self.cursor, len(self._xs) - 1))
            cursor = self._xs[self.cursor]
        message = ""
        if span is None:
            message = ("no points in this window (0: every step)" if window is not None else "no points yet") \
                if self.key else "no metrics"
        ticks = _step_ticks if self.axis == "step" else _time_ticks
        frame = render(series, width, height, x_range=x_range, y_range=limits, log_y=self.log_scale,
                       x_ticks=ticks, cursor=cursor, message=message)
        self._margin = (frame.left, frame.plot_width)
        return frame

    def _update_labels(self) -> None:
        if not self._ready:
            return
        # What the labels are made of, without a cursor (with one, the readout shows the values
        # under it): the same as last time, nothing to make (a grid asks every tick).
        basis = None
        if self.cursor is None:
            basis = (self.pane, self.title_prefix, self.key, tuple(self.options.flags(self.key)), self.legend,
                     self.pinned(), tuple(self.run_ids), tuple(map(self.names, self.run_ids)),
                     tuple(map(self.run_colors.hex, self.run_ids)), self.has_focus)
            if basis == self._labels_for:
                return
        self._labels_for = basis
        legend = Content.assemble(*self._legend_parts())
        readout = self._readout()
        shown = (legend.plain, tuple(legend.spans), readout.plain, tuple(readout.spans))
        if shown == self._labels:
            return  # unchanged: an update would cost a layout pass (a grid repaints every tick)
        self._labels = shown
        self.query_one(".chart-legend", Static).update(legend)
        self.query_one(".chart-readout", Static).update(readout)

    def _legend_parts(self) -> list[Any]:
        parts: list[Any] = [(f"{self.pane} ", "dim")] if self.pane else []
        if self.title_prefix:
            parts += [(self.title_prefix, "bold"), " · "]
        parts.append((self.key or "—", "bold"))
        parts.append((f"  [{' '.join(self.options.flags(self.key))}]", "dim"))
        if self.legend and (len(self.run_ids) > 1 or not self.title_prefix):
            pinned = self.pinned()
            for run_id in self.run_ids:
                mark = "⚑" if run_id == pinned else "──"
                parts += ["  ", (f"{mark} {self.names(run_id)}", self.run_colors.hex(run_id))]
        return parts

    def _readout(self) -> Content:
        if self.cursor is None or not self._xs:
            return Content("←/→ cursor · +/- zoom · l log · x step/time · e smooth · y range"
                           if self.has_focus else "")
        x = self._xs[max(0, min(self.cursor, len(self._xs) - 1))]
        values = self.smoothed_at(x) if self.options.smoothing else self.values_at(x)
        label = "step" if self.axis == "step" else "t"
        head = f"{label} {_x_text(x, self.axis)}"
        # Every run, in its colour: "—" where its curve does not reach this step. Names cut to
        # fit the line; where even short names do not fit, a coloured dot per run (the legend
        # names them).
        shown = [(self.names(r), present.metric(values.get(r)), r) for r in self.run_ids]
        room = (self.size.width or 80) - len(head) - sum(len(value) + 3 for _, value, _ in shown)
        longest = max((len(name) for name, _, _ in shown), default=0)
        fit = min(longest, room // max(1, len(shown)))
        parts: list[Any] = [(head, "bold")]
        for name, value, run_id in shown:
            label = "●" if fit < 4 else name if len(name) <= fit else name[:fit - 1] + "…"
            parts += ["  ", (f"{label} {value}", self.run_colors.hex(run_id))]
        return Content.assemble(*parts)

    def values_at(self, x: float) -> dict[str, float]:
        """Each run's value at ``x``: its last point at or before ``x``, for the runs whose
        curve spans ``x`` (a run that ended earlier, or starts later, has no value there)."""
        out = {}
        for run_id, cx, cy in self._curves():
            i = bisect_right(cx, x) - 1
            if i >= 0 and x <= cx[-1]:
                out[run_id] = float(cy[i])
        return out

    def smoothed_at(self, x: float) -> dict[str, float]:
        """Like :meth:`values_at`, on the smoothed curves."""
        out = {}
        for run_id, cx, cy in self._curves():
            i = bisect_right(cx, x) - 1
            if i >= 0 and x <= cx[-1]:
                out[run_id] = ema(cy[: i + 1].tolist(), self.options.smoothing)[-1]
        return out

    # -- cursor ----------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        """Move the cursor ``delta`` points (it appears at the last point first)."""
        if not self._xs:
            self._curves_to_xs()
        if not self._xs:
            return
        if self.cursor is None:
            self.cursor = len(self._xs) - 1
        else:
            self.cursor = max(0, min(len(self._xs) - 1, self.cursor + delta))
        self._cursor_moved()

    def _curves_to_xs(self) -> None:
        self._xs = _steps_of(self._shown_curves())

    @property
    def cursor_x(self) -> float | None:
        """The x under the cursor (None: no cursor shown)."""
        if self.cursor is None or not self._xs:
            return None
        return self._xs[max(0, min(self.cursor, len(self._xs) - 1))]

    def _cursor_moved(self) -> None:
        self.refresh_bindings()
        x = self._xs[self.cursor] if self.cursor is not None and self._xs else None
        self.post_message(ChartCursorMoved(x, self.values_at(x) if x is not None else {}))
        self.data_changed(None)

    def action_clear_cursor(self) -> None:
        """Hide the cursor."""
        if self.cursor is not None:
            self.cursor = None
            self._cursor_moved()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Esc hides a cursor that is shown; otherwise it is the screen's (Back), in the
        # footer too.
        if action == "clear_cursor":
            return self.cursor is not None
        return True

    def click_at(self, x: int, width: int) -> None:
        """Put the cursor on the point nearest the middle of the clicked column."""
        self._curves_to_xs()
        if not self._xs or width <= 8:
            return
        left, plot_width = self._margin
        if plot_width <= 1:  # not drawn yet: the margin is a guess
            plot_width = width - left - 1
        low, high = self.options.window(self.axis) or (self._xs[0], self._xs[-1])
        fraction = max(0.0, min(1.0, (x - left + 0.5) / plot_width))
        target = low + fraction * (high - low)
        after = bisect_right(self._xs, target)
        nearest = min((i for i in (after - 1, after) if 0 <= i < len(self._xs)),
                      key=lambda i: abs(self._xs[i] - target))
        self.cursor = nearest
        self.focus()
        self._cursor_moved()

    def action_toggle_log(self) -> None:
        """Switch the y axis between linear and log."""
        self.options.log_scale = not self.options.log_scale
        self._options_changed()

    def action_toggle_x(self) -> None:
        """Switch the x axis between step and wall time."""
        self.options.x_axis = "time" if self.options.x_axis == "step" else "step"
        self._options_changed()

    def action_smoothing(self) -> None:
        """Smoothing: an exponential moving average of 0, 0.6, 0.9 or 0.99, the raw curve faint."""
        self.options.next_smoothing()
        self._options_changed()

    def action_skip_start(self) -> None:
        """Fit the y range to the points after the first 5% of steps (again: to every point)."""
        self.options.skip_start = not self.options.skip_start
        self._options_changed()

    def action_zoom(self, factor: float) -> None:
        """Zoom the x axis of every chart in (0.5) or out (2) around this chart's cursor; 0: every step."""
        siblings = [c for c in self.screen.query(MetricChart) if c.options is self.options] \
            if self.is_attached else [self]
        zoom_charts(siblings or [self], self.options, factor, focus=self)
        self.post_message(self.OptionsChanged())

    class OptionsChanged(Message):
        """A key on this chart changed the screen's shared chart options."""

    def _options_changed(self) -> None:
        self.post_message(self.OptionsChanged())
        siblings = [c for c in self.screen.query(MetricChart) if c.options is self.options] \
            if self.is_attached else [self]
        for chart in siblings or [self]:
            chart.options_changed()

    def options_changed(self) -> None:
        """The shared options changed: ask for curves on the new axis, and repaint."""
        if self.axis != self._asked_axis and self.cursor is not None:
            self.cursor = None
            self.refresh_bindings()
        self.data_changed(None)

    def window_changed(self) -> None:
        """The zoomed window changed: keep the cursor on its x where the window still shows it."""
        x = self.cursor_x
        self._curves_to_xs()
        if x is not None:
            if self._xs and self._xs[0] <= x <= self._xs[-1]:
                self.cursor = max(0, bisect_right(self._xs, x) - 1)
            else:
                self.cursor = len(self._xs) - 1 if self._xs else None
            self.refresh_bindings()
        self.data_changed(None)

    def on_focus(self) -> None:
        self._update_labels()

    def on_blur(self) -> None:
        self._update_labels()


def zoom_charts(charts: Iterable[MetricChart], options: ChartOptions, factor: float,
                focus: MetricChart | None = None) -> None:
    """Zoom the x axis of ``charts`` (which share ``options``) by ``factor`` (0: every step again).

    The window is on the focused chart's x axis (else the options'; charts on the other axis
    keep every point); it stays inside the x span of the charts' points, and keeps the focused chart's cursor in
    place (no cursor: the middle of the window).
    """
    charts = list(charts)
    if factor == 0:
        options.x_range = None
    else:
        # The focused chart's axis; else the options' (a screen of system charts only: time).
        axis = focus.axis if focus is not None else options.x_axis
        spans = [span for c in charts if c.axis == axis and (span := c.full_span()) is not None]
        if not spans and focus is None and axis == "step":
            axis = "time"
            spans = [span for c in charts if c.axis == axis and (span := c.full_span()) is not None]
        if not spans:
            return
        full = (min(low for low, _ in spans), max(high for _, high in spans))
        now = options.window(axis)
        centre = focus.cursor_x if focus is not None and focus.axis == axis else None
        options.x_range, options.zoom_axis = zoom_window(full, now, centre, factor), axis
    for chart in charts:
        chart.window_changed()


def _steps_of(curves: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> list[float]:
    """Every x of the curves, once each, ascending (where the cursor can stop)."""
    xs = [cx for _, cx, _, _ in curves if len(cx)]
    if not xs:
        return []
    import numpy as np

    return np.unique(np.concatenate(xs)).tolist()


def _span_of(curves: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> tuple[float, float] | None:
    """The smallest and the largest x of the curves (None: no points); each curve's x ascend."""
    spans = [(cx[0], cx[-1]) for _, cx, _, _ in curves if len(cx)]
    if not spans:
        return None
    return float(min(first for first, _ in spans)), float(max(last for _, last in spans))


# The charts of a grid share their x span (the same runs, the same steps): their axes are the same.
@lru_cache(maxsize=64)
def _step_ticks(low: float, high: float, count: int) -> tuple[list[int], list[str]]:
    return int_ticks(low, high, count)


@lru_cache(maxsize=64)
def _time_ticks(low: float, high: float, count: int) -> tuple[list[float], list[str]]:
    return time_ticks(low, high, max(2, count - 1))


def _x_text(x: float, axis: str) -> str:
    if axis == "step":
        return str(int(x))
    return clock_text(x)
