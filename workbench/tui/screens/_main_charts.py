"""The main screen's charts: the selected run's curve, the overlay of marked runs, and the keys
that change them (``m`` ``M`` ``[`` ``]`` ``l`` ``x`` ``e`` ``y`` ``+`` ``-`` ``0``).

A mixin of :class:`~workbench.tui.screens.main.MainScreen` (kept apart from its tables, log
and filters so that each module reads in one sitting).
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from workbench.runs import present
from workbench.tui._typed import workbench_app
from workbench.tui.screens._chart_keys import ChartOptionKeys
from workbench.tui.widgets._plotting import match_keys, order_keys, prefer_keys
from workbench.tui.widgets.chart import MetricChart, zoom_charts
from workbench.tui.widgets.chart_grid import ChartGrid
from workbench.tui.widgets.run_table import RunTable

__all__ = ["LIVE_KEYS", "ChartPane", "grid_shape"]

#: The curve the main screen shows first: the training loss moves every step.
LIVE_KEYS = ("train/loss", "loss", "train/loss_epoch", "val/loss")


class ChartPane(ChartOptionKeys):
    """Mixin for the main screen: what its charts show, and the keys that change every chart."""

    # Provided by MainScreen.
    app: Any
    chart_options: Any
    key_filter: str
    overlay_ids: list[str]
    _metric_choice: dict[str, str]
    _run_id: str | None
    _grid: ChartGrid
    query_one: Any
    query: Any
    set_class: Any
    _show_run: Any
    _view_changed: Any

    def chart_keys_changed(self) -> None:
        """The settings' chart keys changed: the charts show them first."""
        self._update_overlay(force=True)
        self._show_run(self._run_id)

    def _single_key(self, run_id: str) -> str | None:
        """The key the single chart shows for a run: the one chosen with ``m``, else the first of
        the settings' ``chart_keys`` it has, else a loss."""
        app = workbench_app(self)
        keys = match_keys(list(app.runs.last.get(run_id, {})), self.key_filter)
        chosen = self._metric_choice.get(run_id)
        if chosen in keys:
            return chosen
        for pattern in app.settings.chart_keys:
            found = match_keys(sorted(keys), pattern)
            if found:
                return found[0]
        return next((k for k in LIVE_KEYS if k in keys), None) or present.headline_key(keys) \
            or (order_keys(keys)[0] if keys else None)

    def _update_overlay(self, force: bool = False) -> None:
        """Overlay the marked runs (and the pinned one) when runs are marked; else the single chart."""
        app = workbench_app(self)
        ids = [i for i in app.selection.marked if i in app.runs.rows]
        pinned = app.selection.pinned
        if ids and pinned in app.runs.rows and pinned not in ids:
            ids.append(pinned)
        grid = self.query_one(ChartGrid)
        was = bool(self.overlay_ids)
        self.overlay_ids = ids
        if ids:
            missing = [i for i in ids if i not in app.runs.last]
            if missing:
                app.want_last(missing)
            keys = prefer_keys(order_keys(k for i in ids for k in app.runs.last.get(i, {})), app.settings.chart_keys)
            grid.show(ids, keys, force=force)
        if bool(ids) != was:
            self.set_class(bool(ids), "overlay")
            grid.display = bool(ids)
            self.query_one("#chart", MetricChart).display = not ids
            if not ids:
                grid.show([], [])  # its charts go, and with them their reads
            self._show_run(self._run_id)

    def action_filter_keys(self) -> None:
        """Filter the charts' metric keys: words or globs (loss val/* sys/); Enter keeps, Esc clears."""
        field = self.query_one("#key-filter", Input)
        field.display = True
        field.value = self.key_filter
        field.focus()

    def _close_key_filter(self, clear: bool) -> None:
        field = self.query_one("#key-filter", Input)
        if clear:
            field.value = ""
            self._set_key_filter("")
        field.display = bool(self.key_filter)  # a filter in force stays in sight
        self.query_one(RunTable).focus()

    def _set_key_filter(self, text: str) -> None:
        self.key_filter = text.strip()
        self.query_one(ChartGrid).set_filter(self.key_filter)
        if self._run_id is not None:
            self._show_run(self._run_id)
        self._view_changed()

    def action_page(self, delta: int) -> None:
        """The next or previous page of charts (with no marks: the next or previous metric)."""
        if self.overlay_ids:
            self.query_one(ChartGrid).turn(delta)
            self._view_changed()
        else:
            self._step_metric(delta)

    def _options_changed(self, save: bool = True) -> None:
        for chart in self.query(MetricChart):
            chart.options_changed()
        if save:
            self._view_changed()

    def on_metric_chart_options_changed(self, message: MetricChart.OptionsChanged) -> None:
        self._view_changed()  # l x e y pressed on a focused chart

    def action_zoom(self, factor: float) -> None:
        """Zoom every chart's x axis in (0.5) or out (2) around the middle; 0: every step again."""
        zoom_charts(self.query(MetricChart), self.chart_options, factor)

    def action_next_metric(self) -> None:
        """Show the selected run's next metric in the chart (with runs marked: the next page)."""
        if self.overlay_ids:
            self.query_one(ChartGrid).turn(1)
            self._view_changed()
        else:
            self._step_metric(1)

    def _step_metric(self, delta: int) -> None:
        app = workbench_app(self)
        run_id = self._run_id
        keys = match_keys(sorted(app.runs.last.get(run_id, {})), self.key_filter) if run_id else []
        if not keys:
            return
        chart = self.query_one("#chart", MetricChart)
        now = keys.index(chart.key) if chart.key in keys else (-1 if delta > 0 else 0)
        self._metric_choice[run_id] = keys[(now + delta) % len(keys)]  # type: ignore[index]
        self._show_run(run_id)
        self._view_changed()


def grid_shape(width: int, height: int) -> tuple[int, int]:
    """Columns and rows of the overlay for a terminal: 1×1 at 80×24, 2×2 at 140×40, at most 3×3."""
    columns = max(1, min(3, width // 55))
    live = (height - 2) * 3 // 5 if height >= 30 else (height - 2) // 2  # the overlay's share (main.tcss)
    rows = max(1, min(3, (live - 1) // 9))
    return columns, rows
