"""The app and its run index file: a deleted or replaced index is noticed and reopened."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import RUNS, fill_index, make_test_app, settle, stop_live_runs, wait_until

from workbench.store import RunIndex
from workbench.tui.messages import IndexReplaced, RunLaunched
from workbench.tui.screens.launch import LaunchForm
from workbench.tui.widgets.run_table import RunTable


def unique(messages: list) -> list:
    """Each message once (the hook sees a bubbling message at every node it passes)."""
    return list({id(m): m for m in messages}.values())


def notices(app) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


def remove_index(root: Path) -> None:
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        (root / ".workbench" / name).unlink(missing_ok=True)


@pytest.mark.slow
async def test_a_deleted_index_is_noticed_and_a_launch_lands_in_the_new_one(filled_project: Path) -> None:
    posted: list = []
    app = make_test_app(filled_project)
    try:
        async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
            await settle(pilot)
            assert len(app.runs.view) == len(RUNS)
            remove_index(filled_project)
            await settle(pilot, ticks=2)
            assert [m.deleted for m in unique(posted) if isinstance(m, IndexReplaced)] == [True]
            assert any("index.db was deleted" in n and "workbench index rebuild" in n for n in notices(app))
            assert app.runs.view == [] and app.runs.rows == {}
            table = app.screen.query_one(RunTable)
            assert "no runs yet" in table.render_line(2).text
            # A launch now writes its row into the file the supervisor reads: it starts.
            await pilot.press("n")
            await settle(pilot, ticks=1)
            form = app.screen
            assert isinstance(form, LaunchForm)
            for name, value in (("epochs", "1"), ("samples", "200")):
                form.query_one(f"#cfg-{[f.name for f in form.fields].index(name)}").value = value
            await settle(pilot, ticks=1)
            # Enter on the device choice launches (it used to toggle the choice instead).
            device = form.query_one("#device")
            for _ in range(30):
                if device.has_focus:
                    break
                await pilot.press("tab")
            assert device.has_focus
            await pilot.press("enter")
            await wait_until(pilot, lambda: any(isinstance(m, RunLaunched) for m in posted), timeout=30)
            run_id = [m for m in unique(posted) if isinstance(m, RunLaunched)][0].row.id
            await wait_until(pilot, lambda: app.runs.rows[run_id].status != "queued", timeout=90)
            assert app.runs.view == [run_id]
        with RunIndex(filled_project / ".workbench" / "index.db") as index:
            row = index.get_run(run_id)
            assert row is not None and row.status != "queued"
            assert len(index.list_runs()) == 1
    finally:
        stop_live_runs(filled_project)


async def test_a_replaced_index_shows_what_the_new_file_holds(filled_project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / ".workbench").mkdir(parents=True)
    fill_index(other, RUNS[:2])
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert len(app.runs.view) == len(RUNS)
        remove_index(filled_project)
        shutil.copy(other / ".workbench" / "index.db", filled_project / ".workbench" / "index.db.new")
        (filled_project / ".workbench" / "index.db.new").rename(filled_project / ".workbench" / "index.db")
        await settle(pilot, ticks=2)
        assert sorted(app.runs.view) == sorted(r[0] for r in RUNS[:2])
        assert any("was replaced by another file" in n for n in notices(app))
