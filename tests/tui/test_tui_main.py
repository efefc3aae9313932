"""The main screen driven by real keys over a hand-filled index."""

from __future__ import annotations

import gc
from pathlib import Path

from conftest import NOW, RUNS, _curve, make_test_app, settle

from workbench.store import RunIndex
from workbench.tui.messages import (
    ActionRefused,
    DeleteRequested,
    ResumeRequested,
    RunDeleted,
    RunOpenRequested,
    StopRequested,
)
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.confirm import ConfirmScreen
from workbench.tui.screens.help import HelpScreen, key_sections
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.chart import MetricChart
from workbench.tui.widgets.run_table import RunTable

NEWEST_FIRST = [r[0] for r in reversed(RUNS)]


def unique(messages: list) -> list:
    """Each message once (the hook sees a bubbling message at every node it passes)."""
    return list({id(m): m for m in messages}.values())


def _line(table: RunTable, y: int) -> str:
    return table.render_line(y).text


async def test_table_lists_runs_newest_first_with_status_and_metric(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        assert app.runs.view == NEWEST_FIRST
        header = _line(table, 0)
        for title in ("name", "task", "status", "prog", "dev", "started", "time", "loss", "git"):
            assert title in header
        first = _line(table, 1)
        assert "brisk-otter-6" in first and "running" in first and "62%" in first
        assert f"{_curve(5, 72) + 0.01:.4f}" in first  # its last val/loss, the headline metric
        failed = _line(table, 4)
        assert "wild-ibis-3" in failed and "failed" in failed and "a1f3*" in failed and "SpiralClassif…" in failed


async def test_filter_by_status_task_and_config(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"status:running", "enter")
        assert app.runs.view == ["2n0000000006", "2n0000000005"]
        await pilot.press("slash", "ctrl+u", *"task:sine lr>0.005", "enter")
        assert app.runs.view == ["2n0000000004", "2n0000000001"]
        await pilot.press("slash", "escape")
        assert len(app.runs.view) == len(RUNS)


async def test_sort_keys_cycle_and_reverse(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("o")  # started -> time
        assert app.runs.sort == "duration"
        await pilot.press("O")
        assert app.runs.sort == "duration" and app.runs.descending is False
        app.runs.set_sort("name")
        assert app.runs.view[0] == "2n0000000002"  # bold-yak-2


async def test_enter_opens_the_run_screen(filled_project: Path) -> None:
    posted = []
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot, ticks=1)
        assert isinstance(app.screen, RunScreen)
        assert app.screen.run_id == "2n0000000004"
        assert any(isinstance(m, RunOpenRequested) and m.run_id == "2n0000000004" for m in posted)
        await pilot.press("3")
        await settle(pilot)
        charts = app.screen.query(MetricChart)
        assert {c.key for c in charts} == {"train/loss", "val/loss"}
        await pilot.press("escape")
        assert not isinstance(app.screen, RunScreen)


async def test_mark_two_runs_and_compare(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("space", "space", "c")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert screen.run_ids == ["2n0000000006", "2n0000000005"]
        table = screen.query_one("#compare-table")
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "config.lr" in labels and "train/loss last" in labels and "val/acc best" in labels
        lr = table.get_row("config.lr")
        assert str(lr[1]) == "0.003" and str(lr[2]) == "0.02 ◆"
        await pilot.press("h")  # only the rows that differ
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "config.epochs" not in labels and "config.lr" in labels
        assert {c.key for c in screen.query(MetricChart)} <= {"train/loss", "val/acc", "val/loss"}
        await pilot.press("p")  # pin the first compared run: it becomes the baseline
        assert app.selection.pinned == "2n0000000006"


async def test_compare_needs_two_marks(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        assert not isinstance(app.screen, CompareScreen)


async def test_refusals_are_posted_not_raised(filled_project: Path) -> None:
    posted = []
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
        await settle(pilot)
        await pilot.press("end")  # quiet-lynx-1: completed
        await pilot.press("s", "r", "d")
        await pilot.pause()
        refused = [m for m in unique(posted) if isinstance(m, ActionRefused)]
        assert [m.action for m in refused] == ["stop", "resume"]
        assert "only a queued or running run can be stopped" in refused[0].reason
        assert "fork it with f" in refused[1].reason
        assert isinstance(app.screen, ConfirmScreen)  # delete asks first
        await pilot.press("n")
        assert not any(isinstance(m, (StopRequested, ResumeRequested, DeleteRequested)) for m in posted)


async def test_delete_asks_then_removes_the_run(filled_project: Path) -> None:
    posted = []
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
        await settle(pilot)
        await pilot.press("end", "d", "y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [m.run_id for m in unique(posted) if isinstance(m, DeleteRequested)] == ["2n0000000001"]
        assert [m.run_id for m in unique(posted) if isinstance(m, RunDeleted)] == ["2n0000000001"]
        assert "2n0000000001" not in app.runs.view
    with RunIndex(filled_project / ".workbench" / "index.db") as index:
        assert index.get_run("2n0000000001") is None
        assert not (filled_project / ".workbench" / "runs" / "2n0000000001").exists()


async def test_help_lists_every_key(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        main = app.screen
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.text()
        for section, keys in key_sections(main):
            assert section in text
            for key, what in keys:
                assert f"{key:<16}{what}" in text
        for key in ("n", "space", "c", "p", "s", "r", "f", "d", "/", "?", "q", "Enter", "Ctrl+P"):
            assert f"\n{key} " in text
        await pilot.press("escape")
        assert app.screen is main


async def test_command_palette_has_every_action(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for expected in ("New run", "Mark", "Compare", "Pin", "Stop", "Resume", "Fork", "Delete", "Filter",
                         "Next metric", "Sort by next column", "Reverse sort", "Log scale (train/loss)",
                         "Step/time (train/loss)", "Quit", "Help"):
            assert expected in titles
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Reverse sort")
        await command.callback()
        assert app.runs.descending is False


async def test_quitting_leaves_runs_as_they_are(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("q")
    with RunIndex(filled_project / ".workbench" / "index.db") as index:
        assert index.get_run("2n0000000006").status == "running"


async def test_small_terminal_keeps_the_essentials(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        header = _line(table, 0)
        for title in ("name", "status", "loss"):
            assert title in header
        assert "brisk-otter-6" in _line(table, 1)
        assert app.clock() == NOW


async def test_fork_form_starts_from_the_run_config_and_posts_the_edits(filled_project: Path) -> None:
    from workbench.tui.messages import ForkRequested
    from workbench.tui.screens.launch import LaunchForm

    posted = []
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "down", "down")  # bold-yak-2: stopped, MLPRegression
        assert app.screen.query_one(RunTable).current == "2n0000000002"
        await pilot.press("f")
        await settle(pilot, ticks=1)
        form = app.screen
        assert isinstance(form, LaunchForm) and form.fork_of.id == "2n0000000002"
        lr = [f.name for f in form.fields].index("lr")
        assert form.query_one(f"#cfg-{lr}").value == "0.003"  # the run's value, not the default
        await pilot.press("tab", "end", *["backspace"] * 5, *"0.05", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        forks = [m for m in unique(posted) if isinstance(m, ForkRequested)]
        assert [(m.run_id, m.overrides, m.checkpoint) for m in forks] == [("2n0000000002", ["lr=0.05"], None)]
        refused = [m for m in unique(posted) if isinstance(m, ActionRefused)]
        assert refused and refused[0].action == "fork" and "no checkpoint" in refused[0].reason


async def test_discovery_errors_are_listed_with_the_tasks(filled_project: Path) -> None:
    from workbench.tui.widgets.task_list import TaskList

    (filled_project / "tasks" / "broken.py").write_text("from workbench import Task\n\nclass Broken(Task:\n    pass\n")
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        tasks = app.screen.query_one(TaskList)
        prompts = [str(tasks.get_option_at_index(i).prompt) for i in range(tasks.option_count)]
        assert "SineRegression" in prompts
        errors = [p for p in prompts if p.startswith("⚠")]
        assert len(errors) == 1 and errors[0].startswith("⚠ tasks/broken.py:3")
        assert tasks.get_option_at_index(prompts.index(errors[0])).disabled


async def test_a_tick_redraws_the_row_that_changed_and_keeps_the_others(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 36)) as pilot:
        await settle(pilot)
        assert gc.isenabled()  # the collector waits for the first paint only
        table = app.screen.query_one(RunTable)
        before = [_line(table, y) for y in range(1, 7)]
        assert "62%" in before[0]
        with RunIndex(filled_project / ".workbench" / "index.db") as index:
            with index.write():
                index.update_run("2n0000000006", step=108)  # the running run moves on: 90%
        await settle(pilot)
        after = [_line(table, y) for y in range(1, 7)]
        assert "90%" in after[0] and "brisk-otter-6" in after[0]
        assert after[1:] == before[1:]
        assert [_tinted(table, y) for y in (1, 2)] == [True, False]
        await pilot.press("down")  # the cursor's row is drawn as such, the one it left is not
        assert [_tinted(table, y) for y in (1, 2)] == [False, True]
        assert [_line(table, y) for y in (1, 2)] == after[:2]
    assert gc.isenabled()


def _tinted(table: RunTable, y: int) -> bool:
    """Whether line ``y`` has the cursor's tint."""
    tint = table.run_colors.cursor(table.has_focus).hex6.lower()
    return any(seg.style is not None and seg.style.bgcolor is not None and seg.style.bgcolor.triplet is not None
               and seg.style.bgcolor.triplet.hex == tint for seg in table.render_line(y))

