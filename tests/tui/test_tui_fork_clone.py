"""The fork form says which code a fork runs and takes device, precision, name and tags; C clones."""

from __future__ import annotations

from pathlib import Path

from conftest import make_test_app, settle

from workbench.tui.messages import ForkRequested
from workbench.tui.screens.launch import Choices, LaunchForm, form_words
from workbench.tui.widgets.run_table import RunTable

STOPPED = "2n0000000002"  # bold-yak-2: MLPRegression, lr 0.003, hidden 64


def unique(messages: list) -> list:
    return list({id(m): m for m in messages}.values())


async def _focus(pilot, widget) -> None:
    for _ in range(40):
        if widget.has_focus:
            return
        await pilot.press("tab")
    raise AssertionError(f"could not tab to {widget}")


async def test_fork_form_says_which_code_and_takes_the_working_tree_name_and_tags(filled_project: Path) -> None:
    posted: list = []
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 40), message_hook=posted.append) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "down", "down", "f")
        await settle(pilot, ticks=1)
        form = app.screen
        assert isinstance(form, LaunchForm) and form.fork_of.id == STOPPED
        note = str(form.query_one("#fork-note").render())
        assert "A fork runs the parent's code snapshot" in note and "not your working tree" in note
        names = [f.name for f in form.fields]
        lr = names.index("lr")
        assert all(str(form.query_one(f"#chg-{i}").render()) == "" for i in range(len(names)))
        await _focus(pilot, form.query_one(f"#cfg-{lr}"))
        await pilot.press("end", *["backspace"] * 5, *"0.05")
        assert str(form.query_one(f"#chg-{lr}").render()) == "◆"  # changed from the parent's value
        assert str(form.query_one(f"#chg-{names.index('hidden')}").render()) == ""
        await _focus(pilot, form.query_one("#code", Choices))
        await pilot.press("right", "space")  # working tree now
        await _focus(pilot, form.query_one("#run-name"))
        await pilot.press(*"fork-a")
        await _focus(pilot, form.query_one("#tags"))
        await pilot.press("ctrl+u", *"x, y")
        await settle(pilot, ticks=1)
        assert "✓ ready" in str(form.query_one("#launch-status").render())
        await pilot.press("ctrl+l")
        await settle(pilot, ticks=1)
        forks = [m for m in unique(posted) if isinstance(m, ForkRequested)]
        assert [(m.run_id, m.overrides, m.code, m.name, m.tags, m.device, m.precision) for m in forks] == [
            (STOPPED, ["lr=0.05"], "worktree", "fork-a", ["x", "y"], None, None)]


async def test_clone_opens_the_launch_form_with_the_runs_config_from_both_screens(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "down", "down")
        assert app.screen.query_one(RunTable).current == STOPPED
        for opener in ((), ("enter",)):  # the main screen, then the run screen
            await pilot.press(*opener, "C")
            await settle(pilot, ticks=1)
            form = app.screen
            assert isinstance(form, LaunchForm) and form.clone_of.id == STOPPED and form.fork_of is None
            assert "New run from bold-yak-2's config: MLPRegression" in str(form.query_one("#launch-title").render())
            names = [f.name for f in form.fields]
            lr = names.index("lr")
            assert form.query_one(f"#cfg-{lr}").value == "0.003"
            default = next(f for f in form.fields if f.name == "lr").default
            assert str(form.query_one(f"#chg-{lr}").render()) == ("◆" if default != 0.003 else "")
            request = form.request()
            assert request.task == "MLPRegression" and ("lr=0.003" in request.overrides) == (default != 0.003)
            assert request.name is None  # a new name is picked
            await pilot.press("escape")
            await pilot.pause()


def test_form_words_use_the_forms_labels() -> None:
    assert form_words("--nproc 9 needs --backend ddp") == "processes 9 needs backend ddp"
    assert form_words("a run named 'x' already exists; pick another --name") == \
        "a run named 'x' already exists; pick another name"
    assert form_words("--nproc-per-node stays") == "--nproc-per-node stays"
