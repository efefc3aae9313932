"""A grid of metric charts, one key each, the same runs overlaid in every one.

The main screen shows the marked runs (and the pinned one, drawn on top) this way. The grid
has as many columns and rows as the screen gives it (``set_shape``); keys that do not fit are
paged (``turn``), and a filter keeps the keys that match (words or globs: ``loss val/*``).
Only the charts on the page exist, so a tick reads only the curves on screen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.widgets import Static

from workbench.tui._state import SeriesCache
from workbench.tui._watcher import SeriesKey
from workbench.tui.colors import RunColors
from workbench.tui.widgets._kept import KeptGrid, KeptLines, KeptStatic
from workbench.tui.widgets._plotting import ChartOptions, match_keys
from workbench.tui.widgets.chart import MetricChart

__all__ = ["ChartGrid"]


class ChartGrid(KeptLines, Vertical):
    """Charts of several keys for the same runs, in a grid that pages.

    Args:
        series: The app's series cache.
        colors: The app's run colours.
        names: Maps a run id to its name (the legend).
        request: Called when a chart needs a read now.
        pinned: Returns the pinned run (drawn on top), or None.
        options: How the charts draw (shared with the screen's other charts).
        pane: The number key that jumps to the grid (shown before its title), or "".
    """

    DEFAULT_CSS = """
    ChartGrid { height: 1fr; }
    ChartGrid > .grid-title { height: 1; }
    ChartGrid > .grid-charts { height: 1fr; grid-gutter: 0 2; }
    ChartGrid .grid-chart > .chart-readout { display: none; }
    ChartGrid .grid-chart:focus > .chart-readout { display: block; }
    """

    def __init__(self, series: SeriesCache, colors: RunColors, names: Callable[[str], str],
                 request: Callable[[], None], *, pinned: Callable[[], str | None], options: ChartOptions,
                 id: str | None = None, pane: str = "") -> None:
        super().__init__(id=id)
        self.pane = pane
        self.cache = series
        self.run_colors = colors
        self.names = names
        self.request = request
        self.pinned = pinned
        self.options = options
        self.run_ids: list[str] = []
        self.keys: list[str] = []
        self.key_filter = ""
        self.page = 0
        self._pending_page: int | None = None  # a saved page, taken once enough keys are known
        self.shape = (1, 1)
        self._shown: tuple[Any, ...] | None = None
        self._charts: list[MetricChart] = []  # the charts on the page, in order
        self._title: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield KeptStatic(classes="grid-title")
        yield KeptGrid(classes="grid-charts")

    # -- what to show ----------------------------------------------------------------

    @property
    def matching(self) -> list[str]:
        """The keys the filter keeps."""
        return match_keys(self.keys, self.key_filter)

    @property
    def pages(self) -> int:
        """How many pages the matching keys fill."""
        columns, rows = self.shape
        return max(1, math.ceil(len(self.matching) / (columns * rows)))

    def show(self, run_ids: list[str], keys: list[str], force: bool = False) -> None:
        """Overlay these runs in a chart per key (keys in the order given); nothing: no charts.
        ``force``: lay out again even if nothing seems to have changed (the key order did)."""
        self.run_ids, self.keys = list(run_ids), list(keys)
        if force:
            self._shown = None
        self._layout()

    def restore_page(self, page: int) -> None:
        """Show page ``page`` (a saved view's) as soon as the keys fill that many pages."""
        self._pending_page = page if page > 0 else None
        self._layout()

    @property
    def saved_page(self) -> int:
        """The page to remember: the one shown, or a saved one still waiting for its keys."""
        return self._pending_page if self._pending_page is not None else self.page

    def set_shape(self, columns: int, rows: int) -> None:
        """Use a grid of ``columns`` × ``rows`` charts per page."""
        self.shape = (max(1, columns), max(1, rows))
        self._layout()

    def turn(self, delta: int) -> None:
        """Show the next (``delta`` 1) or previous (-1) page, round the end."""
        self._pending_page = None
        self.page = (self.page + delta) % self.pages
        self._layout()

    def set_filter(self, text: str) -> None:
        """Keep the keys that match ``text`` (words or globs); back to the first page."""
        if text.strip() != self.key_filter:
            self._pending_page = None
            self.page = 0
        self.key_filter = text.strip()
        self._layout()

    def _layout(self) -> None:
        if not self.is_mounted:
            return
        columns, rows = self.shape
        per_page = columns * rows
        keys = self.matching if self.run_ids else []
        if self._pending_page is not None and self._pending_page < self.pages and self.run_ids:
            self.page, self._pending_page = self._pending_page, None
        self.page = max(0, min(self.page, self.pages - 1))
        shown = keys[self.page * per_page:(self.page + 1) * per_page]
        pinned = self.pinned()
        signature = (tuple(self.run_ids), tuple(shown), self.shape, pinned, len(keys), self.key_filter)
        if signature == self._shown:
            return
        self._shown = signature
        grid = self.query_one(".grid-charts", Grid)
        used_columns = max(1, min(columns, len(shown)))
        grid.styles.grid_size_columns = used_columns
        grid.styles.grid_size_rows = max(1, min(rows, math.ceil(len(shown) / used_columns)))
        charts = list(grid.query(MetricChart))
        for chart in charts[len(shown):]:
            chart.remove()  # its curves are no longer wanted (MetricChart.on_unmount)
        self._charts = charts[:len(shown)]
        for i, key in enumerate(shown):
            if i < len(charts):
                chart = charts[i]
            else:
                chart = MetricChart(self.cache, self.run_colors, self.names, self.request, pinned=self.pinned,
                                    legend=False, options=self.options, classes="grid-chart")
                grid.mount(chart)
                self._charts.append(chart)
            chart.show(key, self.run_ids)
        self._update_title(len(keys), len(shown))

    def _update_title(self, matching: int, shown: int) -> None:
        parts: list[Any] = [(f"{self.pane} ", "dim")] if self.pane else []
        parts.append(("overlay", "bold"))
        if matching:
            first = self.page * self.shape[0] * self.shape[1] + 1
            parts.append(f" {first}–{first + shown - 1} of {matching}")
            if self.pages > 1:
                parts.append((f"  page {self.page + 1}/{self.pages} ([ prev, ] next)", "dim"))
        else:
            parts.append((" no metric matches" if self.key_filter else " no metrics yet", "dim"))
        if self.key_filter:
            parts += ["  ", (f"M {self.key_filter}", "$accent")]
        else:
            parts.append(("  M keys", "dim"))
        pinned = self.pinned()
        for run_id in self.run_ids:
            mark = "⚑" if run_id == pinned else "──"
            parts += ["  ", (f"{mark} {self.names(run_id)}", self.run_colors.hex(run_id))]
        title = Content.assemble(*parts)
        shown = (title.plain, tuple(title.spans))
        if shown != self._title:  # an update costs a layout pass (a resize lays the grid out again)
            self._title = shown
            self.query_one(".grid-title", Static).update(title)

    def refresh_title(self) -> None:
        """Redraw the legend (a run's colour or name changed, or the pin)."""
        self._shown = None
        self._layout()

    def data_changed(self, changed: set[SeriesKey] | None) -> None:
        """Repaint the charts whose curves changed (``None``: all)."""
        for chart in self._charts:  # (the grid's charts, without a query: this runs every tick)
            chart.data_changed(changed)
