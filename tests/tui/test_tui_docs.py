"""docs/tui.md names every key of every screen and widget, and every action has help text."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.binding import Binding

from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.compare import CompareScreen, CompareTable
from workbench.tui.screens.confirm import ConfirmScreen
from workbench.tui.screens.launch import LaunchForm
from workbench.tui.screens.main import MainScreen
from workbench.tui.screens.prompt import TextPrompt
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.chart import MetricChart
from workbench.tui.widgets.images import ImagesPanel
from workbench.tui.widgets.run_table import RunTable

DOC = (Path(__file__).resolve().parents[2] / "docs" / "tui.md").read_text()
OWNERS = [WorkbenchApp, MainScreen, RunScreen, CompareScreen, LaunchForm, ConfirmScreen, TextPrompt, RunTable,
          MetricChart,
          CompareTable, ImagesPanel]
SHOWN = {
    "question_mark": "?", "slash": "/", "enter": "Enter", "escape": "Esc", "space": "space",
    "left_square_bracket": "[", "right_square_bracket": "]", "pageup": "PgUp", "pagedown": "PgDn",
    "home": "Home", "end": "End", "up": "↑", "down": "↓", "left": "←", "right": "→",
    "shift+left": "Shift+←", "shift+right": "Shift+→", "ctrl+p": "Ctrl+P", "ctrl+l": "Ctrl+L", "tab": "Tab", "shift+tab": "Shift+Tab",
    "plus": "+", "minus": "-", "equals_sign": "=",
}


def _bindings() -> list[tuple[str, Binding]]:
    out = []
    for owner in OWNERS:
        for binding in owner.BINDINGS:
            if isinstance(binding, Binding):
                out.append((owner.__name__, binding))
    return out


def test_the_bindings_are_found() -> None:
    # Guards the parametrisations below: an empty list would make them vacuous.
    assert {owner for owner, _ in _bindings()} == {o.__name__ for o in OWNERS}


@pytest.mark.parametrize(("owner", "binding"), _bindings(), ids=lambda v: v if isinstance(v, str) else v.key)
def test_every_key_is_documented(owner: str, binding: Binding) -> None:
    for key in binding.key.split(","):
        shown = SHOWN.get(key.strip(), key.strip())
        # The key alone between backticks: `s` is documented by "`s`", not by "`runs`".
        assert f"`{shown}`" in DOC, f"{owner}: key {shown!r} ({binding.action}) is not in docs/tui.md"


@pytest.mark.parametrize(("owner", "binding"), _bindings(), ids=lambda v: v if isinstance(v, str) else v.key)
def test_every_action_has_a_docstring(owner: str, binding: Binding) -> None:
    cls = next(o for o in OWNERS if o.__name__ == owner)
    name = binding.action.split("(", 1)[0]
    if name.startswith("app."):
        cls, name = WorkbenchApp, name.removeprefix("app.")
    method = getattr(cls, f"action_{name}", None)
    assert method is not None, f"{owner} has no action_{name}"
    assert (method.__doc__ or "").strip(), f"{owner}.action_{name} has no docstring (the help shows it)"
