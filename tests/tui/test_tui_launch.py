"""The launch form: typed fields, live validation, and a real run launched from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PROBE, make_test_app, settle, stop_live_runs, wait_until

from workbench.store import RunIndex
from workbench.tui.messages import (
    LaunchRequested,
    ResumeRequested,
    RunLaunched,
    RunResumed,
    RunStopped,
    StopRequested,
)
from workbench.tui.screens.confirm import ConfirmScreen
from workbench.tui.screens.launch import LaunchForm
from workbench.tui.widgets.run_table import RunTable
from workbench.tui.widgets.task_list import TaskList


def unique(messages: list) -> list:
    """Each message once (the hook sees a bubbling message at every node it passes)."""
    return list({id(m): m for m in messages}.values())


async def open_form(pilot, task: str) -> LaunchForm:
    """Focus the task list with Shift+Tab, move to ``task``, press Enter."""
    app = pilot.app
    await pilot.press("shift+tab")
    tasks = app.screen.query_one(TaskList)
    assert tasks.has_focus
    for _ in range(tasks.option_count):
        if tasks.current_task == task:
            break
        await pilot.press("down")
    assert tasks.current_task == task
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, LaunchForm)
    return app.screen


async def set_field(pilot, form: LaunchForm, name: str, text: str) -> None:
    """Tab to the field ``name``, clear it and type ``text``."""
    index = [f.name for f in form.fields].index(name)
    field = form.query_one(f"#cfg-{index}")
    for _ in range(40):
        if field.has_focus:
            break
        await pilot.press("tab")
    assert field.has_focus, f"could not tab to {name}"
    await pilot.press("end", *["backspace"] * (len(field.value) + 1), *text)


def run_count(root: Path) -> int:
    path = root / ".workbench" / "index.db"
    if not path.exists():
        return 0
    with RunIndex(path) as index:
        return len(index.list_runs())


async def test_bad_value_shows_its_message_and_launches_nothing(project: Path) -> None:
    posted: list = []
    app = make_test_app(project)
    async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
        await settle(pilot)
        before = run_count(project)
        form = await open_form(pilot, "SineRegression")
        assert [f.name for f in form.fields][:3] == ["epochs", "lr", "batch_size"]
        await set_field(pilot, form, "lr", "1e-2x")
        await pilot.pause()
        error = str(form.query_one("#err-1").content)
        assert "expected float, got '1e-2x'" in error
        assert form.query_one("#launch").disabled
        await pilot.press("enter")  # refused: the form stays, nothing is requested
        await settle(pilot, ticks=1)
        assert isinstance(app.screen, LaunchForm)
        assert "expected float" in str(form.query_one("#launch-status").content)
        assert not [m for m in posted if isinstance(m, LaunchRequested)]
        # A fixed value clears the message.
        await pilot.press("backspace")
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert str(form.query_one("#err-1").content) == ""
        await pilot.press("escape")
        assert not isinstance(app.screen, LaunchForm)
    assert run_count(project) == before


async def test_checks_that_need_prepare_show_too(project: Path) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        form = await open_form(pilot, "SineRegression")
        for _ in range(30):
            if form.query_one("#run-name").has_focus:
                break
            await pilot.press("tab")
        await pilot.press(*"bad name!")
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "bad run name" in str(form.query_one("#launch-status").content)
        assert form.query_one("#launch").disabled


@pytest.mark.slow
async def test_launch_watch_stop_and_resume_real_runs(project: Path) -> None:
    """The daily loop with real processes, in one app session (two runs overlap to save time)."""
    from workbench.project import load_project
    from workbench.runs import LaunchRequest, launch

    with RunIndex(project / ".workbench" / "index.db") as index:
        long_run = launch(load_project(project), LaunchRequest(
            task="SineRegression", overrides=["epochs=40", "samples=4000"], device="cpu"),
            index=index, probe=PROBE)
    posted: list = []
    app = make_test_app(project, poll_interval=0.3)
    try:
        async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
            await settle(pilot)
            # 1. Launch a tiny run from the form and watch it complete in the table.
            form = await open_form(pilot, "SineRegression")
            await set_field(pilot, form, "epochs", "1")
            await set_field(pilot, form, "samples", "2000")
            assert form.overrides() == ["epochs=1", "samples=2000"]
            await pilot.press("enter")
            await wait_until(pilot, lambda: any(isinstance(m, RunLaunched) for m in posted), timeout=30)
            launched = [m for m in unique(posted) if isinstance(m, RunLaunched)][0].row
            assert [m.request.overrides for m in unique(posted) if isinstance(m, LaunchRequested)] == \
                [["epochs=1", "samples=2000"]]
            assert not isinstance(app.screen, LaunchForm)
            table = app.screen.query_one(RunTable)
            assert table.current == launched.id and table.has_focus  # at once, under the cursor
            assert launched.name in table.render_line(1).text
            await wait_until(pilot, lambda: app.runs.rows[launched.id].status not in ("queued", "running"),
                             timeout=120, tick=False)
            await settle(pilot, ticks=1)
            row = app.runs.rows[launched.id]
            assert row.status == "completed", row.error
            assert row.config["epochs"] == 1 and row.config["samples"] == 2000
            line = table.render_line(1 + app.runs.view.index(launched.id)).text
            assert "completed" in line and "100%" in line
            assert app.runs.headline(launched.id)[0] == "val/loss"
            # 2. Stop the long run (with confirmation), then resume it.
            run_id = long_run.id
            await pilot.press("down")
            assert table.current == run_id
            await wait_until(pilot, lambda: (app.runs.rows[run_id].step or 0) > 5, timeout=90, tick=False)
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_until(pilot, lambda: any(isinstance(m, RunStopped) for m in posted), timeout=30)
            assert [m.run_id for m in unique(posted) if isinstance(m, StopRequested)] == [run_id]
            await wait_until(pilot, lambda: app.runs.rows[run_id].status == "stopped", timeout=90, tick=False)
            await pilot.press("r")
            await wait_until(pilot, lambda: any(isinstance(m, RunResumed) for m in posted), timeout=60)
            assert [m.run_id for m in unique(posted) if isinstance(m, ResumeRequested)] == [run_id]
            await wait_until(pilot, lambda: app.runs.rows[run_id].attempt == 2
                             and app.runs.rows[run_id].status in ("queued", "running"), timeout=30)
            # 3. Kill it: its own key and its own confirmation; it ends at once, interrupted.
            resumed_at = app.runs.rows[run_id].step or 0
            await wait_until(pilot, lambda: app.runs.rows[run_id].status == "running"
                             and (app.runs.rows[run_id].step or 0) > resumed_at + 2, timeout=90, tick=False)
            await pilot.press("K")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_until(pilot, lambda: app.runs.rows[run_id].status == "interrupted", timeout=60, tick=False)
            kills = [m for m in unique(posted) if isinstance(m, StopRequested) and m.kill]
            assert [m.run_id for m in kills] == [run_id]
            assert "--kill" in (app.runs.rows[run_id].error or "")
    finally:
        stop_live_runs(project)
