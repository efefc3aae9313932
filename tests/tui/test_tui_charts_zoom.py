"""Charts read out every run at the cursor and zoom on an x range by keys; the compare screen
puts what is better (and why) first; 1–4 jump between the main screen's panes; app.toml's
smoothing applies to the run screen from the start."""

from __future__ import annotations

from pathlib import Path

from conftest import make_test_app, settle

from workbench.tui.widgets._plotting import MIN_ZOOM_SPAN, zoom_window
from workbench.tui.widgets.chart import MetricChart
from workbench.tui.widgets.chart_grid import ChartGrid

OTTER, HERON = "2n0000000006", "2n0000000005"


def _text(widget) -> str:
    return str(widget.render())


def _readout(chart: MetricChart) -> str:
    return _text(chart.query_one(".chart-readout"))


def _legend(chart: MetricChart) -> str:
    return _text(chart.query_one(".chart-legend"))


def test_zoom_window_keeps_the_centre_in_place_and_stays_inside() -> None:
    assert zoom_window((0, 100), None, 50, 0.5) == (25, 75)
    assert zoom_window((0, 100), None, 100, 0.5) == (50, 100)  # the cursor at the end stays there
    assert zoom_window((0, 100), (50, 100), None, 2) is None  # as wide as every point: no zoom
    assert zoom_window((0, 100), (90, 100), 95, 0.1) == (93, 93 + MIN_ZOOM_SPAN)  # never narrower
    left, right = zoom_window((0, 100), (80, 100), 100, 2)
    assert (left, right) == (60, 100)


async def test_compare_puts_metrics_first_reads_every_run_and_zooms(filled_project: Path) -> None:
    from workbench.store import RunIndex

    with RunIndex(filled_project / ".workbench" / "index.db") as index:  # a logged hyperparameter
        for run_id, lr in ((OTTER, 0.003), (HERON, 0.02)):
            index.add_metrics(run_id, [("lr", lr, s, 1e9 + s) for s in range(1, 17)])
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("space", "space", "c")  # brisk-otter-6 (to step 74), calm-heron-5 (to 16)
        await settle(pilot, ticks=2)
        screen = app.screen
        table = screen.query_one("#compare-table")
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        # Metrics right below status and task (losses first), then config (what differs first).
        assert labels[:5] == ["status", "task", "val/loss best", "val/loss last", "val/loss at step 12"]
        # Judged-by metrics, the config that differs, other metrics (a logged lr), the config that agrees.
        assert labels.index("val/acc best") < labels.index("config.lr") < labels.index("lr last") \
            < labels.index("config.epochs")
        # A logged hyperparameter has no "best" and no star; "at step N" rows say what they are,
        # and are left out where they would repeat "last" (both runs logged lr to step 16).
        assert "lr last" in labels and "lr best" not in labels and "lr at step 16" not in labels
        lr_cells = [str(c) for i, label in enumerate(labels) if label.startswith("lr ")
                    for c in table.get_row_at(i)[1:]]
        assert not any("★" in c for c in lr_cells) and "0.0200 +0.0170" in lr_cells
        # 140×40: the table's metric rows and the config that differs fit without scrolling,
        # the code diff sits beside the charts (taller than five lines), pages say so in words.
        assert labels.index("config.lr") < table.size.height - 1
        assert screen.has_class("wide") and screen.query_one("#diff-panel").size.height > 12
        assert "page 1/2 ([ prev, ] next)" in _text(screen.query_one("#charts-title"))
        assert "[ ] page" not in _text(screen.query_one("#charts-title"))
        # The cursor reads out every run, "—" past a run's last point.
        chart = screen.query(MetricChart).first()
        assert chart.key == "val/loss"
        chart.focus()
        await pilot.press("right")  # the last step any run reached
        readout = _readout(chart)
        # (Names are cut to fit a narrow chart.)
        assert readout.startswith("step 72") and "brisk-o" in readout and readout.endswith("… —")
        await pilot.press("shift+left", "shift+left", "shift+left", "shift+left", "shift+left", "left")
        readout = _readout(chart)
        assert readout.startswith("step 12") and "calm-he" in readout and "—" not in readout
        # + zooms every chart in around the cursor, - out, 0 back to every step.
        await pilot.press("right", "right", "right", "right", "right")  # back to step 72
        await pilot.press("plus")
        options = screen.chart_options
        low, high = options.x_range
        assert high - low < 72 and low <= 72 <= high
        assert all("zoom" in _legend(c) for c in screen.query(MetricChart))
        assert _readout(chart).startswith("step 72")  # the cursor kept its step
        await pilot.press("plus", "minus")
        assert options.x_range == (low, high)
        await pilot.press("0")
        assert options.x_range is None and "zoom" not in _legend(chart)
        # From the table (no chart focused) the keys zoom around the middle.
        table.focus()
        await pilot.press("equals_sign")
        assert options.x_range is not None
        await pilot.press("minus")
        assert options.x_range is None


async def test_number_keys_jump_between_panes_and_the_overlay_reads_every_run(filled_project: Path) -> None:
    from workbench.tui.widgets.run_table import RunTable
    from workbench.tui.widgets.task_list import TaskList

    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        screen = app.screen

        def title_background(panel: str):
            return screen.query_one(f"{panel} > .panel-title").styles.background

        assert screen.query_one(RunTable).has_focus
        await pilot.press("1")
        await pilot.pause()
        assert screen.query_one(TaskList).has_focus
        assert title_background("#tasks-panel") != title_background("#runs-panel")  # the focused one
        await pilot.press("4")
        await pilot.pause()
        assert screen.query_one("#log").has_focus and title_background("#log-panel") == title_background(
            "#tasks-panel") != title_background("#runs-panel")
        await pilot.press("3")
        assert screen.query_one("#chart", MetricChart).has_focus
        assert _legend(screen.query_one("#chart", MetricChart)).startswith("3 ")
        await pilot.press("2", "space", "space")
        await settle(pilot, ticks=1)
        assert screen.query_one(RunTable).has_focus
        await pilot.press("4")  # the overlay took the log's place: a notice, the focus stays
        assert screen.query_one(RunTable).has_focus
        await pilot.press("3")
        grid_chart = screen.query_one(ChartGrid).query(MetricChart).first()
        assert grid_chart.has_focus
        await pilot.press("right")
        readout = _readout(grid_chart)
        assert "brisk-otter-6 0." in readout and "calm-heron-5 —" in readout
        await pilot.press("minus", "plus", "0")  # zoomed out all the way already: nothing to undo
        assert screen.chart_options.x_range is None


async def test_run_screen_starts_with_app_toml_smoothing_and_keeps_its_tab_keys(filled_project: Path) -> None:
    (filled_project / ".workbench" / "app.toml").write_text("smoothing = 0.9\n")
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("enter", "3")
        await settle(pilot, ticks=1)
        screen = app.screen
        assert screen.chart_options.smoothing == 0.9
        charts = list(screen.query("#metric-charts MetricChart"))
        assert charts and all("ema 0.9" in _legend(c) for c in charts)
        await pilot.press("plus")  # 0 zooms back out; 1–8 stay the tabs
        assert screen.chart_options.x_range is not None
        await pilot.press("0")
        assert screen.chart_options.x_range is None and screen.query_one("#run-tabs").active == "metrics"
        await pilot.press("2")
        assert screen.query_one("#run-tabs").active == "config"


def test_a_narrow_step_axis_still_gets_two_ticks() -> None:
    from workbench.tui.widgets._plotting import int_ticks

    assert int_ticks(1, 74, 3)[0] == [25, 50]  # 50 alone said little
    assert int_ticks(0, 120, 6)[0] == [0, 25, 50, 75, 100]
