"""A run's system metrics (``sys/*``): CPU, memory and GPUs, charted against wall time.

The run's supervisor samples them every few seconds and stores them against time (their
step is milliseconds, see docs/run-index.md), so these charts never use steps. The panel
makes its charts only while it is shown (``activate``): a run screen on another tab costs
the refresh tick nothing for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.widgets import Static

from workbench.runs import present
from workbench.tui._state import SeriesCache
from workbench.tui._watcher import SeriesKey
from workbench.tui.colors import RunColors
from workbench.tui.widgets._plotting import ChartOptions, time_keyed
from workbench.tui.widgets.chart import MetricChart

__all__ = ["SystemPanel", "system_keys", "system_label"]

_NAMES = {"cpu_percent": "CPU %", "rss_mb": "RSS MB", "memory_percent": "memory %"}
_GPU = re.compile(r"^gpu(\d+)/(.+)$")
_GPU_NAMES = {"util_percent": "util %", "memory_mb": "memory MB", "power_w": "power W"}
#: The order of the panel's charts: the run's processes, the machine, then each GPU.
_ORDER = ("cpu_percent", "rss_mb", "memory_percent")


def system_keys(keys: list[str]) -> list[str]:
    """A run's ``sys/*`` keys in the panel's order: CPU, RSS, memory, then GPUs by number."""
    def order(key: str) -> tuple[Any, ...]:
        name = key.split("/", 1)[1]
        if name in _ORDER:
            return (0, _ORDER.index(name), "")
        gpu = _GPU.match(name)
        if gpu:
            return (1, int(gpu.group(1)), gpu.group(2))
        return (2, 0, name)

    return sorted((k for k in keys if time_keyed(k)), key=order)


def system_label(key: str) -> str:
    """``sys/cpu_percent`` → ``CPU %``; ``sys/gpu0/memory_mb`` → ``GPU 0 memory MB``."""
    name = key.split("/", 1)[1] if "/" in key else key
    if name in _NAMES:
        return _NAMES[name]
    gpu = _GPU.match(name)
    if gpu:
        return f"GPU {gpu.group(1)} {_GPU_NAMES.get(gpu.group(2), gpu.group(2))}"
    return name


class SystemPanel(Vertical):
    """The System tab: last values in a line, then a chart per ``sys/*`` key against time.

    Args:
        run_id: The run.
        series: The app's series cache.
        colors: The app's run colours.
        names: Maps a run id to its name.
        request: Called when a chart needs a read now.
        options: The screen's chart options (log scale and smoothing apply; x is always time).
    """

    DEFAULT_CSS = """
    SystemPanel > .system-summary { height: auto; padding: 0 1; }
    SystemPanel > .system-charts { height: 1fr; grid-size: 2; grid-gutter: 0 2; grid-rows: 12; overflow-y: auto; }
    SystemPanel.narrow > .system-charts { grid-size: 1; }
    """

    def __init__(self, run_id: str, series: SeriesCache, colors: RunColors, names: Callable[[str], str],
                 request: Callable[[], None], *, options: ChartOptions, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_id = run_id
        self.cache = series
        self.run_colors = colors
        self.names = names
        self.request = request
        self.options = options
        self.keys: list[str] = []
        self.active = False

    def compose(self) -> ComposeResult:
        yield Static(classes="system-summary")
        yield Grid(classes="system-charts")

    def show(self, last: dict[str, float], active: bool) -> None:
        """Show the run's system metrics (``last``: its last values, every key); charts only
        while ``active`` (the tab is shown)."""
        self.keys = system_keys(list(last))
        self.active = active
        self._summary(last)
        grid = self.query_one(".system-charts", Grid)
        wanted = self.keys if active else []
        charts = list(grid.query(MetricChart))
        if [c.key for c in charts] == wanted:
            return
        focused = self.screen.focused
        if not active and focused is not None and self in focused.ancestors:
            # Focus moving to a sibling chart would bring its tab back: let go first.
            self.screen.set_focus(None)
        for chart in charts[len(wanted):]:
            chart.remove()  # its curves are no longer read
        for i, key in enumerate(wanted):
            if i < len(charts):
                chart = charts[i]
            else:
                chart = MetricChart(self.cache, self.run_colors, self.names, self.request,
                                    options=self.options, classes="system-chart")
                grid.mount(chart)
            chart.show(key, [self.run_id], system_label(key))

    def _summary(self, last: dict[str, float]) -> None:
        if not self.keys:
            text = Content.from_markup(
                "[dim]no system metrics: the run's supervisor samples CPU, memory and GPUs every 5 s "
                "while the run is live (none for runs that ran elsewhere or before they existed)")
        else:
            parts: list[Any] = [("now ", "bold")]
            for key in self.keys:
                value = last.get(key, math.nan)
                parts += [(f"{system_label(key)} ", "dim"), (present.metric(value), "bold"), "   "]
            parts.append(("against wall time (h:mm:ss since the first sample)", "dim"))
            text = Content.assemble(*parts)
        self.query_one(".system-summary", Static).update(text)

    def data_changed(self, changed: set[SeriesKey] | None) -> None:
        """Repaint the charts whose curves changed."""
        for chart in self.query(MetricChart):
            chart.data_changed(changed)
