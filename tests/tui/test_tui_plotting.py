"""What the charts compute before drawing: smoothing, the y range, time ticks, key filters;
and the chart's plot area (its colours follow the theme, a click finds the step)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_test_app, settle

from workbench.tui.widgets._plotting import (
    ChartOptions,
    clock_text,
    ema,
    faint,
    match_keys,
    order_keys,
    time_ticks,
    y_range,
)
from workbench.tui.widgets.system_panel import system_keys, system_label


def test_ema_is_tensorboards_debiased_average() -> None:
    assert ema([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    smoothed = ema([4.0, 4.0, 4.0], 0.9)
    assert smoothed == pytest.approx([4.0, 4.0, 4.0])  # debiased: a flat curve stays flat
    step = ema([0.0] * 5 + [10.0] * 5, 0.6)
    assert step[4] == 0.0 and 0 < step[5] < step[9] < 10.0  # lags behind a jump
    assert ema([0.0] * 5 + [10.0] * 5, 0.99)[9] < step[9]  # heavier smoothing lags more


def test_the_options_cycle_and_say_so_in_the_title() -> None:
    options = ChartOptions()
    assert [options.next_smoothing() for _ in range(4)] == [0.6, 0.9, 0.99, 0.0]
    options.smoothing, options.log_scale, options.skip_start = 0.9, True, True
    assert options.flags("train/loss") == ["step", "log", "ema 0.9", "y>5%"]
    assert options.flags("sys/cpu_percent")[0] == "time"  # system metrics: always time


def test_the_y_range_leaves_out_the_start_spike() -> None:
    xs = [float(s) for s in range(1, 101)]
    ys = [100.0 if s < 4 else 1.0 + s / 100 for s in range(1, 101)]
    low, high = y_range([(xs, ys)], log=False)
    assert high < 3 and low < 1.05  # the spike is out; the lowest points stay in
    spike_late = ys[:50] + [50.0] + ys[51:]
    assert y_range([(xs, spike_late)], log=False)[1] > 50  # a spike after the start is kept
    assert y_range([([1.0, 2.0], [5.0, 1.0])], log=False) is None  # too short to say
    low, high = y_range([(xs, ys)], log=True)
    assert 0 < low < 1.05 and high < 3


def test_time_ticks_read_h_mm_ss() -> None:
    ticks, labels = time_ticks(0, 3600 * 2 + 125, 5)
    assert labels[0] == "0:00:00" and all(len(label.split(":")) == 3 for label in labels)
    assert ticks == sorted(ticks) and ticks[-1] <= 3600 * 2 + 125
    assert clock_text(59.6) == "0:01:00" and clock_text(3 * 3600 + 5) == "3:00:05"
    assert time_ticks(0, 40, 4)[1] == ["0:00:00", "0:00:15", "0:00:30"]


def test_keys_match_words_or_globs_in_chart_order() -> None:
    keys = order_keys(["val/acc", "sys/cpu_percent", "train/loss", "val/loss", "lr"])
    assert keys == ["val/loss", "train/loss", "val/acc", "lr", "sys/cpu_percent"]
    assert match_keys(keys, "val/*") == ["val/loss", "val/acc"]
    assert match_keys(keys, "acc sys/") == ["val/acc", "sys/cpu_percent"]
    assert match_keys(keys, "") == keys


def test_system_keys_are_ordered_and_named() -> None:
    keys = ["sys/gpu1/util_percent", "sys/memory_percent", "sys/gpu0/memory_mb", "train/loss", "sys/cpu_percent",
            "sys/rss_mb"]
    assert system_keys(keys) == ["sys/cpu_percent", "sys/rss_mb", "sys/memory_percent", "sys/gpu0/memory_mb",
                                 "sys/gpu1/util_percent"]
    assert [system_label(k) for k in system_keys(keys)] == ["CPU %", "RSS MB", "memory %", "GPU 0 memory MB",
                                                            "GPU 1 util %"]


def test_a_faint_colour_sits_between_the_colour_and_the_background() -> None:
    assert faint((200, 100, 0), (0, 0, 0), 0.5) == (100, 50, 0)


async def test_the_plot_follows_the_theme_and_a_click_lands_on_its_step(filled_project: Path) -> None:
    from workbench.tui.widgets.chart import MetricChart, _Plot

    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        chart = app.screen.query_one("#chart", MetricChart)
        plot = chart.query_one(_Plot)
        axis = plot.render_line(0)._segments[0].style  # the y axis, in the theme's text colour
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        assert plot.render_line(0)._segments[0].style.bgcolor != axis.bgcolor
        # A click on the plot's first and last columns puts the cursor on the first and last step.
        frame = plot.frame
        assert frame is not None and frame.x_range is not None
        await pilot.click(plot, offset=(frame.left, 2))
        assert chart.cursor_x == chart._xs[0]
        await pilot.click(plot, offset=(frame.left + frame.plot_width - 1, 2))
        assert chart.cursor_x == chart._xs[-1]


def test_the_charts_load_numpy_only_to_draw_a_curve() -> None:
    import subprocess
    import sys

    code = ("import sys, workbench.tui.screens.main, workbench.tui.screens.run\n"
            "from workbench.tui.widgets._braille import Series, render\n"
            "render([Series([], [], 'a')], 40, 8, message='no points yet')\n"
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # ~0.1 s of import the first paint does not wait for
