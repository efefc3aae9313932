"""``E`` on the main screen exports the marked runs (or the selected one) as ``workbench export``
does: a format and path (default under .workbench/exports/), one confirmation, a notice."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import make_test_app, settle, wait_until

from workbench.errors import WorkbenchError
from workbench.tui.screens._export import FORMATS, parse_target


def test_the_formats_are_the_commands_and_an_answer_reads_plainly(tmp_path: Path) -> None:
    from workbench.runs.export import FORMATS as COMMAND_FORMATS

    assert FORMATS == COMMAND_FORMATS
    state = tmp_path / ".workbench"
    assert parse_target("json out/runs.json", tmp_path, state) == ("json", tmp_path / "out" / "runs.json")
    assert parse_target("out/runs.db", tmp_path, state) == ("sqlite", tmp_path / "out" / "runs.db")
    fmt, path = parse_target("jsonl", tmp_path, state)
    assert fmt == "jsonl" and path.parent == state / "exports" and path.suffix == ".jsonl"
    with pytest.raises(WorkbenchError, match="unknown format 'xml'"):
        parse_target("xml out", tmp_path, state)


async def test_e_exports_the_marked_runs_after_one_confirmation(filled_project: Path) -> None:
    from workbench.tui.screens.confirm import ConfirmScreen
    from workbench.tui.screens.prompt import TextPrompt

    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("space", "space", "E")  # brisk-otter-6 and calm-heron-5
        await pilot.pause()
        prompt = app.screen
        assert isinstance(prompt, TextPrompt)
        field = prompt.query_one("#prompt-input")
        assert field.value.startswith("csv .workbench/exports/runs-")
        # A bad answer: one line, nothing asked, nothing written.
        await pilot.press("ctrl+u", *"xml out", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, (TextPrompt, ConfirmScreen))
        assert any("unknown format 'xml'" in n.message for n in app._notifications)
        await pilot.press("E")
        await pilot.pause()
        folder = filled_project / app.screen.query_one("#prompt-input").value.split(maxsplit=1)[1]
        await pilot.press("enter")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen) and len(confirm.items) == 2
        assert "brisk-otter-6" in confirm.items[0] and "calm-heron-5" in confirm.items[1]
        await pilot.press("y")
        await wait_until(pilot, lambda: any(n.title == "Exported" for n in app._notifications), tick=False)
        with (folder / "runs.csv").open() as handle:
            assert sorted(row["name"] for row in csv.DictReader(handle)) == ["brisk-otter-6", "calm-heron-5"]
        notice = next(n for n in app._notifications if n.title == "Exported")
        assert "2 runs" in notice.message and "exports/runs-" in notice.message and "(csv)" in notice.message
