"""Tag-then-act: s K r d t act on every marked run after one confirmation that lists them."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import make_test_app, settle, wait_until

from workbench.store import RunIndex
from workbench.tui.messages import BatchDone
from workbench.tui.screens.confirm import ConfirmScreen
from workbench.tui.screens.prompt import TextPrompt

RUNNING, STOPPED, COMPLETED = "2n0000000006", "2n0000000002", "2n0000000001"


def _notices(app) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def _mark_three(pilot) -> None:
    await pilot.press("space")  # brisk-otter-6 (running), then the cursor moves down
    await pilot.press("down", "down", "down", "space", "space")  # bold-yak-2 (stopped), quiet-lynx-1
    assert pilot.app.selection.marked == [RUNNING, STOPPED, COMPLETED]


async def test_delete_and_tag_the_marked_runs_skipping_the_live_one(filled_project: Path) -> None:
    posted: list = []
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
        await settle(pilot)
        await _mark_three(pilot)
        for key, question, what in (("s", "Stop", "finishes its batch, saves a checkpoint"),
                                    ("K", "Kill", "ends at once, without a checkpoint")):
            await pilot.press(key)
            await pilot.pause()
            confirm = app.screen
            assert isinstance(confirm, ConfirmScreen) and confirm.question == f"{question} 1 marked run? (2 skipped)"
            items = confirm.item_texts()
            assert items[0].startswith(f"▸ brisk-otter-6 — {what}")
            assert items[1] == "  skipped: bold-yak-2 — stopped; only a queued or running run can be " + (
                "stopped" if key == "s" else "killed")
            await pilot.press("n")
        await pilot.press("r")  # only the stopped one resumes
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen) and confirm.question == "Resume 1 marked run? (2 skipped)"
        items = confirm.item_texts()
        assert items[0].startswith("▸ bold-yak-2 — resumes from its last checkpoint")
        assert "skipped: brisk-otter-6 — running; it is still going" in items[1]
        assert "skipped: quiet-lynx-1 — completed; only stopped, interrupted or failed runs resume" in items[2]
        await pilot.press("n")
        await pilot.press("d")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen) and confirm.question == "Delete 2 marked runs? (1 skipped)"
        items = confirm.item_texts()
        assert items[0].startswith("▸ bold-yak-2 — its metrics, folder") and "code snapshot" in items[0]
        assert items[2] == "  skipped: brisk-otter-6 — running; stop it first"
        await pilot.press("y")
        await wait_until(pilot, lambda: any(isinstance(m, BatchDone) for m in posted))
        await settle(pilot)
        assert STOPPED not in app.runs.rows and COMPLETED not in app.runs.rows
        assert app.selection.marked == [RUNNING]
        assert any("deleted 2 runs: bold-yak-2, quiet-lynx-1" in n for n in _notices(app))
        with RunIndex(filled_project / ".workbench" / "index.db") as index:
            assert index.get_run(STOPPED) is None and index.get_run(RUNNING) is not None
        # Nothing left that a kill would skip... but a resume applies to none: refused, with why.
        await pilot.press("r")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("none of the 1 marked runs can be resumed (brisk-otter-6: running" in n for n in _notices(app))
        # t: a small input; words add, -word removes.
        await pilot.press("space")  # mark the run under the cursor as well (calm-heron-5: tagged sweep-a)
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"best -sweep-a", "enter")
        await settle(pilot)
        with RunIndex(filled_project / ".workbench" / "index.db") as index:
            tags = {i: index.get_run(i).tags for i in app.selection.marked}
        assert all("best" in t and "sweep-a" not in t for t in tags.values()) and len(tags) == 2


async def test_export_marked_runs_from_the_palette(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await _mark_three(pilot)
        await pilot.press("ctrl+p", *"export marked")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: any(n.startswith("Exported") for n in _notices(app)))
        notice = next(n for n in _notices(app) if n.startswith("Exported"))
        folders = list((filled_project / ".workbench" / "exports").iterdir())
        assert len(folders) == 1 and folders[0].name in notice and "3 runs" in notice
        with (folders[0] / "runs.csv").open() as f:
            assert sorted(r["id"] for r in csv.DictReader(f)) == sorted([RUNNING, STOPPED, COMPLETED])
