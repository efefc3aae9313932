"""The keys that change how every chart of a screen draws — ``l`` log y, ``x`` step or time,
``e`` smoothing, ``y`` the y range without the start — for the main, run and compare screens,
whose charts share one :class:`~workbench.tui.widgets._plotting.ChartOptions`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.tui.widgets._plotting import ChartOptions

__all__ = ["ChartOptionKeys"]


class ChartOptionKeys:
    """A screen mixin: the four actions change ``chart_options``, then the screen's
    ``_options_changed`` redraws its charts (and keeps the choice where it keeps choices)."""

    chart_options: ChartOptions

    if TYPE_CHECKING:
        def _options_changed(self) -> None: ...

    def action_log_scale(self) -> None:
        """Log y axis on every chart (again: linear)."""
        self.chart_options.log_scale = not self.chart_options.log_scale
        self._options_changed()

    def action_x_axis(self) -> None:
        """Step or wall time on every chart's x axis (system metrics: always time)."""
        self.chart_options.x_axis = "time" if self.chart_options.x_axis == "step" else "step"
        self._options_changed()

    def action_smoothing(self) -> None:
        """Smoothing of every chart: an exponential moving average of 0, 0.6, 0.9 or 0.99."""
        self.chart_options.next_smoothing()
        self._options_changed()

    def action_skip_start(self) -> None:
        """Fit every chart's y range to the points after the first 5% of steps (again: all points)."""
        self.chart_options.skip_start = not self.chart_options.skip_start
        self._options_changed()
