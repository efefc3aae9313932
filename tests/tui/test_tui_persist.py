"""The view and the settings outlive the app: quit, reopen, and the same view is there."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_test_app, settle

from workbench.store import RunIndex
from workbench.tui._persist import SavedView
from workbench.tui._state import SORT_COLUMNS
from workbench.tui.settings import read_settings
from workbench.tui.widgets.chart_grid import ChartGrid
from workbench.tui.widgets.run_table import RunTable

SIZE = (80, 24)  # a 1×1 overlay: every key is a page of its own


def _notices(app) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_quit_and_reopen_shows_the_same_view(filled_project: Path) -> None:
    state = filled_project / ".workbench" / "app-state.json"
    app = make_test_app(filled_project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not state.exists()  # nothing changed yet: nothing written
        table = app.screen.query_one(RunTable)
        first = table.current
        await pilot.press("m")  # the single chart's next metric for the selected run
        chosen = app.screen._metric_choice[first]
        await pilot.press("space", "space")  # mark the two newest runs
        await pilot.press("up", "p")  # pin the second
        await pilot.press("o", "O")  # sort by the next column, reversed
        await pilot.press("slash", *"lr<0.01", "enter")
        await pilot.press("l", "e", "e")  # log y, ema 0.9
        await pilot.press("M", *"loss", "enter")
        await settle(pilot)
        await pilot.press("right_square_bracket")  # page 2 of the overlay
        await settle(pilot)
        marked, pinned = list(app.selection.marked), app.selection.pinned
        grid = app.screen.query_one(ChartGrid)
        assert grid.page == 1 and len(marked) == 2 and pinned == marked[1]
        expected = dict(sort=app.runs.sort, descending=app.runs.descending, filter="lr<0.01", log_scale=True,
                        smoothing=0.9, key_filter="loss", overlay_page=1)
        assert app.runs.sort != "started" and app.runs.descending is not SORT_COLUMNS[app.runs.sort]
    saved = json.loads(state.read_text())
    assert saved["marked"] == marked and saved["metric_choice"] == {first: chosen}

    again = make_test_app(filled_project)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = again.screen
        assert again.selection.marked == marked and again.selection.pinned == pinned
        assert (again.runs.sort, again.runs.descending, again.runs.filter.text) == (
            expected["sort"], expected["descending"], "lr<0.01")
        options = screen.chart_options
        assert (options.log_scale, options.smoothing, options.x_axis) == (True, 0.9, "step")
        assert screen.key_filter == "loss" and screen.query_one("#key-filter").display
        assert screen.query_one(ChartGrid).page == 1
        assert screen._metric_choice == {first: chosen}
        assert "◆ 2 marked" in str(screen.query_one("#runs-title").render())
        assert not _notices(again)


async def test_a_broken_view_is_ignored_with_a_notice_and_gone_runs_are_dropped(filled_project: Path) -> None:
    state = filled_project / ".workbench" / "app-state.json"
    state.write_text("{not json")
    app = make_test_app(filled_project)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        notices = _notices(app)
        assert len(notices) == 1 and "app-state.json is not a saved view" in notices[0]
        assert app.selection.marked == [] and app.runs.sort == "started"
        await pilot.press("space")  # the next change writes a good file
        await pilot.pause(0.8)
        assert json.loads(state.read_text())["marked"] == [app.runs.view[0]]

    # A run deleted between sessions (by the CLI, say) leaves the saved view quietly.
    with RunIndex(filled_project / ".workbench" / "index.db") as index:
        gone = "2n0000000006"
        index.delete_run(gone)
    view = SavedView(marked=[gone, "2n0000000001"], pinned=gone, metric_choice={gone: "val/loss"})
    state.write_text(view.to_json())
    again = make_test_app(filled_project)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.selection.marked == ["2n0000000001"] and again.selection.pinned is None
        assert again.screen._metric_choice == {} and not _notices(again)
    assert json.loads(state.read_text())["marked"] == ["2n0000000001"]  # rewritten without it


async def test_settings_are_read_checked_and_changed_from_the_palette(filled_project: Path) -> None:
    settings = filled_project / ".workbench" / "app.toml"
    settings.write_text('theme = "nord"\nsmoothing = 2\nchart_keys = ["val/acc"]\nrefresh = 1\n')
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        notices = _notices(app)
        assert len(notices) == 1
        assert "smoothing = 2: expected a number from 0 (none) to below 1" in notices[0]
        assert "unknown key 'refresh'" in notices[0] and "refresh_interval" in notices[0]
        assert app.theme == "nord" and app.screen.chart_options.smoothing == 0.0
        assert app.screen.query_one("#chart").key == "val/acc"  # the settings' chart key comes first
        # Ctrl+P, "Settings: smoothing 0.9": every chart of the screen, and the file.
        await pilot.press("ctrl+p")
        await pilot.press(*"settings smoothing 0.9")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.chart_options.smoothing == 0.9
        await pilot.press("ctrl+p", *"settings theme gruvbox")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "gruvbox"
    saved, problems = read_settings(settings, {"gruvbox", "nord"})
    assert (saved.theme, saved.smoothing, saved.chart_keys, problems) == ("gruvbox", 0.9, ["val/acc"], [])


def test_the_state_folder_is_never_snapshotted(project: Path) -> None:
    """Settings and the saved view live in .workbench/: a run's code never includes them."""
    from workbench.snapshot import take_snapshot

    state = project / ".workbench"
    state.mkdir(exist_ok=True)
    (state / "app.toml").write_text('theme = "nord"\n')
    (state / "app-state.json").write_text("{}")
    snap = take_snapshot(project, "check", state_dir=state)
    import subprocess

    files = subprocess.run(["git", "--git-dir", str(snap.git_dir), "ls-tree", "-r", "--name-only", snap.commit],
                           capture_output=True, text=True, check=True).stdout.split()
    assert files and not [f for f in files if f.startswith(".workbench")]
