"""The main screen's overlay (marked runs in a grid of charts) and the charts' options, by keys."""

from __future__ import annotations

from pathlib import Path

from conftest import make_test_app, settle

from workbench.tui._watcher import SeriesKey
from workbench.tui.screens.main import grid_shape
from workbench.tui.widgets.chart import MetricChart
from workbench.tui.widgets.chart_grid import ChartGrid

OTTER, HERON, MOLE = "2n0000000006", "2n0000000005", "2n0000000004"


def _grid_charts(app) -> list[MetricChart]:
    return list(app.screen.query_one(ChartGrid).query(MetricChart))


def _title(app) -> str:
    return str(app.screen.query_one(ChartGrid).query_one(".grid-title").render())


def _legend(chart: MetricChart) -> str:
    return str(chart.query_one(".chart-legend").render())


def test_the_grid_follows_the_terminal() -> None:
    assert grid_shape(80, 24) == (1, 1)
    assert grid_shape(140, 40) == (2, 2)
    assert grid_shape(200, 60) == (3, 3)


async def test_marked_runs_overlay_in_a_grid_that_pages_and_filters(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        single = app.screen.query_one("#chart", MetricChart)
        assert single.display and single.run_ids == [OTTER]  # no marks: the highlighted run
        await pilot.press("space", "space")  # brisk-otter-6, calm-heron-5
        await settle(pilot)
        grid = app.screen.query_one(ChartGrid)
        assert grid.display and not single.display and grid.shape == (2, 2)
        charts = _grid_charts(app)
        # Losses first (validation before training), then the rest.
        assert [c.key for c in charts] == ["val/loss", "train/loss", "val/acc"]
        assert all(c.run_ids == [OTTER, HERON] for c in charts)
        assert "brisk-otter-6" in _title(app) and "calm-heron-5" in _title(app)
        # The tick reads only the curves on screen: the hidden single chart asks for none.
        assert set(app.series.wanted()) == {SeriesKey(r, c.key) for c in charts for r in (OTTER, HERON)}
        assert app.series.data[SeriesKey(HERON, "val/acc")].points
        # M filters the keys (a word, or a glob); Enter keeps the filter, in sight.
        await pilot.press("M", *"val/*", "enter")
        await settle(pilot, ticks=1)
        assert [c.key for c in _grid_charts(app)] == ["val/loss", "val/acc"]
        assert "M val/*" in _title(app) and app.screen.query_one("#key-filter").display
        await pilot.press("M", "ctrl+u", *"acc", "enter")
        assert [c.key for c in _grid_charts(app)] == ["val/acc"]
        await pilot.press("M", "escape")  # Esc in the field clears it
        assert len(_grid_charts(app)) == 3 and not app.screen.query_one("#key-filter").display
        # p on a third run: the pinned run joins the overlay, drawn last (on top).
        await pilot.press("p")  # the cursor moved past the marks: pale-mole-4
        await settle(pilot, ticks=1)
        charts = _grid_charts(app)
        assert charts[0].run_ids == [OTTER, HERON, MOLE] and "⚑ pale-mole-4" in _title(app)
        assert [run_id for run_id, _, _ in charts[0]._curves()][-1] == MOLE
        # Unmarking every run brings back the single chart of the highlighted run.
        await pilot.press("home", "space", "space")
        await settle(pilot, ticks=1)
        assert single.display and not grid.display and not _grid_charts(app)
        assert single.run_ids == [app.screen.current_run_id()]


async def test_a_small_terminal_pages_one_chart_at_a_time(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("space", "space")
        await settle(pilot)
        assert [c.key for c in _grid_charts(app)] == ["val/loss"]
        assert "1–1 of 3" in _title(app) and "page 1/3" in _title(app)
        await pilot.press("right_square_bracket")
        await settle(pilot, ticks=1)
        assert [c.key for c in _grid_charts(app)] == ["train/loss"]
        await pilot.press("left_square_bracket", "left_square_bracket")  # round the start
        await settle(pilot, ticks=1)
        assert [c.key for c in _grid_charts(app)] == ["val/acc"]
        assert set(app.series.wanted()) == {SeriesKey(OTTER, "val/acc"), SeriesKey(HERON, "val/acc")}


async def test_smoothing_log_and_y_range_keys_change_every_chart(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("space", "space")
        await settle(pilot)
        options = app.screen.chart_options
        await pilot.press("e")
        assert options.smoothing == 0.6
        assert all("ema 0.6" in _legend(c) for c in _grid_charts(app))
        await pilot.press("e", "e")
        assert options.smoothing == 0.99 and "ema 0.99" in _legend(_grid_charts(app)[0])
        await pilot.press("e")
        assert options.smoothing == 0.0 and "ema" not in _legend(_grid_charts(app)[0])
        await pilot.press("l", "y")
        assert options.log_scale and options.skip_start
        assert all("log" in _legend(c) and "y>5%" in _legend(c) for c in _grid_charts(app))
        # x switches every chart to wall time: the curves are read again, against time.
        await pilot.press("x")
        await settle(pilot, ticks=1)
        assert all(c.axis == "time" for c in _grid_charts(app))
        assert SeriesKey(OTTER, "train/loss", "time") in app.series.data
        # A focused chart's own key changes its siblings too (they share the options).
        chart = _grid_charts(app)[1]
        chart.focus()
        await pilot.press("e")
        assert options.smoothing == 0.6 and "ema 0.6" in _legend(_grid_charts(app)[0])


async def test_the_run_screen_charts_system_metrics_against_time(filled_project: Path) -> None:
    from workbench.store import RunIndex
    from workbench.tui.screens.run import RunScreen
    from workbench.tui.widgets.system_panel import SystemPanel

    start = 1768470000.0
    with RunIndex(filled_project / ".workbench" / "index.db") as index:
        # As the supervisor stores them: the step is the sample's time in milliseconds.
        index.add_metrics(OTTER, [(key, value + n, int((start + 5 * n) * 1000), start + 5 * n)
                                  for n in range(40)
                                  for key, value in (("sys/cpu_percent", 90.0), ("sys/rss_mb", 300.0),
                                                     ("sys/gpu0/util_percent", 50.0))])
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter", "3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        metric_keys = {c.key for c in screen.query("#metric-charts MetricChart")}
        assert metric_keys and not any(k.startswith("sys/") for k in metric_keys)  # not against steps
        panel = screen.query_one(SystemPanel)
        assert not list(panel.query(MetricChart))  # another tab: nothing read for it
        assert not any(s.key.startswith("sys/") for s in app.series.wanted())
        await pilot.press("7")
        await settle(pilot)
        charts = list(panel.query(MetricChart))
        assert [c.key for c in charts] == ["sys/cpu_percent", "sys/rss_mb", "sys/gpu0/util_percent"]
        assert all(c.axis == "time" for c in charts)
        assert "CPU %" in str(charts[0].query_one(".chart-legend").render())
        assert "GPU 0 util %" in str(panel.query_one(".system-summary").render())
        data = app.series.data[SeriesKey(OTTER, "sys/cpu_percent", "time")]
        assert data.points[0][0] == start and data.points[-1] == (start + 195, 129.0)
        # x switches the Metrics charts to time; system charts are on time whatever it says.
        await pilot.press("x")
        await settle(pilot, ticks=1)
        assert all(c.axis == "time" for c in charts)
        await pilot.press("x")
        assert all(c.axis == "time" for c in charts)
        # The cursor reads out h:mm:ss since the first sample.
        charts[0].focus()
        await pilot.press("right")
        assert str(charts[0].query_one(".chart-readout").render()).startswith("t 0:03:15")
        await pilot.press("escape", "1")
        await settle(pilot, ticks=1)
        assert not list(panel.query(MetricChart))
