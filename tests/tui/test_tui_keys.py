"""Keys and panels fixed in issue 14: each test presses the keys a person would."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import NOW, OTHER_HOST, make_test_app, settle, wait_until
from textual.command import CommandPalette
from textual.widgets import RichLog

from workbench.store import RunIndex
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.launch import Choices, LaunchForm
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.chart import MetricChart
from workbench.tui.widgets.run_table import RunTable

LONG = "x" * 150 + " END-OF-LINE"


def log_text(log: RichLog) -> str:
    return "\n".join(strip.text for strip in log.lines)


async def focus(pilot, widget, tries: int = 30) -> None:
    """Press Tab until ``widget`` has focus."""
    for _ in range(tries):
        if widget.has_focus:
            return
        await pilot.press("tab")
    assert widget.has_focus, f"could not tab to {widget}"


def escape_does(app) -> str:
    """The action Esc runs now (what the footer shows for it)."""
    return app.screen.active_bindings["escape"].binding.action


async def test_run_screen_output_and_escape_from_a_chart(filled_project: Path) -> None:
    log = filled_project / ".workbench" / "runs" / "2n0000000006" / "output.log"
    log.write_text(log.read_text() + LONG + "\n")
    app = make_test_app(filled_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "END-OF-LINE" in log_text(app.screen.query_one("#log", RichLog))  # wrapped, not cut
        await pilot.press("enter", "4")
        await settle(pilot, ticks=1)
        assert isinstance(app.screen, RunScreen)
        # The log did not change after the main screen read it: the tab shows it all the same.
        text = log_text(app.screen.query_one("#run-log", RichLog))
        assert "epoch 7  step 72/120" in text and "END-OF-LINE" in text
        await pilot.press("3")
        await settle(pilot, ticks=1)
        chart = app.screen.query(MetricChart).first()
        await focus(pilot, chart)
        assert escape_does(app) == "back"  # the footer keeps "esc Back"
        await pilot.press("right")
        assert chart.cursor is not None and escape_does(app) == "clear_cursor"
        await pilot.press("escape")
        assert chart.cursor is None and isinstance(app.screen, RunScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, RunScreen)


async def test_compare_table_keys_and_the_chart_cursor_at_the_end(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("space", "space", "c")  # brisk-otter-6 (74 steps) and calm-heron-5 (16)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        table = screen.query_one("#compare-table")
        assert table.has_focus and table.cursor_row == 0
        await pilot.press("j", "j", "k")
        assert table.cursor_row == 1
        chart = next(c for c in screen.query(MetricChart) if c.key == "train/loss")
        await focus(pilot, chart)
        assert escape_does(app) == "back"
        await pilot.press("right")  # the cursor appears at the last step: 74
        readout = str(chart.query_one(".chart-readout").render())
        assert readout.startswith("step 74") and "brisk-otter-6" in readout
        assert readout.endswith("—")  # calm-heron-5 ended at step 16: no value past its end
        assert set(chart.values_at(16.0)) == {"2n0000000005", "2n0000000006"}
        await pilot.press("escape", "escape")
        assert not isinstance(app.screen, CompareScreen)


async def test_a_resumed_run_shows_time_ran_device_chosen_and_epochs(filled_project: Path) -> None:
    start = NOW - 7200
    run_dir = filled_project / ".workbench" / "runs" / "2n0000000009"
    (run_dir / "artifacts").mkdir(parents=True)
    (run_dir / "artifacts" / "reproducibility.json").write_text('{"device": "cpu", "seed": 0}')
    with RunIndex(filled_project / ".workbench" / "index.db") as index:
        index.create_run(id="2n0000000009", name="twice-run-9", task="SineRegression", status="completed",
                         created_at=start - 5, started_at=start, ended_at=start + 3660, attempt=2,
                         host=OTHER_HOST, device="auto", backend="single", run_dir=str(run_dir),
                         config={"epochs": 2}, step=120, total_steps=120, epoch=2)
        conn = index.connection
        with index.write():  # two attempts of a minute each, an hour apart
            for offset, kind, message in ((0, "started", ""), (60, "stopped", ""), (3590, "resumed", ""),
                                          (3600, "started", ""),
                                          (3659, "checkpoint", "saved at step 120 (epoch 3, batch 0; end)"),
                                          (3660, "completed", "")):
                conn.execute("INSERT INTO events (run_id, time, kind, message) VALUES (?, ?, ?, ?)",
                             ("2n0000000009", start + offset, kind, message))
        index.create_run(id="2n0000000008", name="odd-total-8", task="SineRegression", status="failed",
                         created_at=start - 10, started_at=start - 9, ended_at=start - 1, host=OTHER_HOST,
                         step=5, total_steps=-1)
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        line = table.render_line(1 + app.runs.view.index("2n0000000009")).text
        assert "twice-run-9" in line and "2m00s" in line and "1h01m" not in line
        assert " cpu " in line and "auto" not in line  # the device it chose, not "auto"
        odd = table.render_line(1 + app.runs.view.index("2n0000000008")).text
        assert "step 5" in odd and "0%" not in odd  # a negative total is no percentage
        table.select("2n0000000009")
        await pilot.press("enter")
        await settle(pilot, ticks=1)
        overview = str(app.screen.query_one("#overview-text").render())
        assert "ran 2m00s · wall 1h01m over 2 attempts" in overview
        assert "auto → cpu / single" in overview
        # One way of counting epochs: the row's "2 of 2" and the checkpoint "after epoch 2".
        assert "epoch 2 of 2" in overview and "(after epoch 2; end)" in overview and "epoch 3" not in overview


async def test_launch_form_enter_on_a_choice_launches_and_ctrl_p_opens_the_palette(project: Path) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot, ticks=1)
        form = app.screen
        assert isinstance(form, LaunchForm)
        assert "Ctrl+L" in str(form.query_one("#launch-status").render())
        epochs = form.query_one("#cfg-0")
        await focus(pilot, epochs)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette) and epochs.value == "4"
        await pilot.press("escape")
        assert app.screen is form
        await pilot.press("end", "backspace", *"-1")
        await settle(pilot, ticks=1)
        assert "out of range" in str(form.query_one("#launch-status").render())  # the launch check's message
        device = form.query_one("#device", Choices)
        await focus(pilot, device)
        before = device.pressed_index
        await pilot.press("enter")  # launches (refused here: epochs), never toggles the choice
        await pilot.pause()
        assert device.pressed_index == before and isinstance(app.screen, LaunchForm)
        assert form.launching is False and "out of range" in str(form.query_one("#launch-status").render())


async def test_launch_form_shows_what_the_launch_check_refuses_or_warns(project: Path) -> None:
    cores = os.cpu_count() or 1
    app = make_test_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot, ticks=1)
        form = app.screen
        status = form.query_one("#launch-status")
        await focus(pilot, form.query_one("#backend", Choices))
        await pilot.press("right", "space")  # ddp
        await focus(pilot, form.query_one("#nproc"))
        await pilot.press("end", "backspace", *str(100 * cores))
        await settle(pilot, ticks=1)
        # In the form's words (its label "processes"), not the CLI's flag "--nproc".
        assert f"processes {100 * cores} on a {cores}-core CPU" in str(status.render())
        assert "--" not in str(status.render())
        assert form.query_one("#launch").disabled
        await pilot.press(*["backspace"] * 6, *str(cores + 1))
        await settle(pilot, ticks=1)
        shown = str(status.render())
        assert "✓ ready" in shown and f"⚠ processes {cores + 1} is more than this machine's {cores} cores" in shown
        await focus(pilot, form.query_one("#precision"))
        await pilot.press("enter", "down", "down", "enter")  # 16-mixed
        await settle(pilot, ticks=1)
        assert "precision '16-mixed' needs a CUDA GPU" in str(status.render())


async def test_screenshot_goes_to_the_project_and_quitting_says_runs_keep_going(
        filled_project: Path, tmp_path: Path) -> None:
    assert not (tmp_path / "Downloads").exists()  # HOME is tmp_path
    app = make_test_app(filled_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, ticks=1)
        await pilot.press("ctrl+p", *"screenshot")
        await pilot.pause(0.3)
        await pilot.press("enter")
        folder = filled_project / ".workbench" / "screenshots"
        await wait_until(pilot, lambda: folder.is_dir() and any(folder.glob("*.svg")), timeout=30, tick=False)
        await wait_until(pilot, lambda: any("screenshots" in str(n.message) for n in app._notifications),
                         timeout=10, tick=False)
        await pilot.press("q")
        said = " ".join(str(r) for r in app._exit_renderables)  # printed once the app has closed
    assert "2 runs still going (brisk-otter-6, calm-heron-5)" in said
    assert "they keep running" in said and "`workbench`" in said and "`workbench stop NAME...`" in said


async def test_the_footer_fits_a_small_terminal(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, ticks=1)
        for keys in ((), ("enter",), ("escape", "space", "space", "c")):
            await pilot.press(*keys)
            await settle(pilot, ticks=1)
            shown = list(app.screen.query("FooterKey"))
            palette = [k for k in shown if k.has_class("-command-palette")]
            assert len(palette) == 1
            others = [k for k in shown if k not in palette]
            assert others and max(k.region.right for k in others) < palette[0].region.x, type(app.screen)
            assert palette[0].region.right <= 80
