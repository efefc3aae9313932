"""``?``: every key of the screen below, of its widgets, and of the app."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

__all__ = ["HelpScreen", "key_sections"]

_NAMES = {
    "question_mark": "?", "slash": "/", "space": "space", "enter": "Enter", "escape": "Esc",
    "left_square_bracket": "[", "right_square_bracket": "]", "pageup": "PgUp", "pagedown": "PgDn",
    "ctrl+p": "Ctrl+P", "ctrl+l": "Ctrl+L", "tab": "Tab", "shift+left": "Shift+←",
    "shift+right": "Shift+→", "left": "←", "right": "→", "up": "↑", "down": "↓", "home": "Home",
    "end": "End", "equals_sign": "=", "full_stop": ".", "comma": ",", "plus": "+", "minus": "-",
}


def _keys(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    return " ".join(_NAMES.get(k.strip(), k.strip()) for k in binding.key.split(","))


def _describe(owner: Any, binding: Binding) -> str:
    name = binding.action.split("(", 1)[0]
    if name.startswith("app.") or ("(" in binding.action and binding.description):
        return binding.description or name  # the docstring of a parameterised action reads badly
    method = getattr(owner, f"action_{name}", None)
    doc = (method.__doc__ or "").strip().splitlines() if method is not None else []
    return doc[0] if doc else (binding.description or name.replace("_", " "))


def key_sections(screen: Screen) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(section, [(keys, what it does), ...]), ...]`` for a screen and the app."""
    from workbench.tui.screens.compare import CompareTable
    from workbench.tui.widgets.chart import MetricChart
    from workbench.tui.widgets.run_table import RunTable

    sections: list[tuple[str, list[tuple[str, str]]]] = []
    own = [(_keys(b), _describe(screen, b)) for b in screen.BINDINGS if isinstance(b, Binding)]
    sections.append((getattr(screen, "HELP_TITLE", type(screen).__name__), own))
    widgets = {type(w) for w in screen.query("*")}
    for cls, title in ((RunTable, "Run table"), (CompareTable, "Compare table"), (MetricChart, "Chart")):
        if cls in widgets:
            sections.append((title, [(_keys(b), _describe(cls, b)) for b in cls.BINDINGS
                                     if isinstance(b, Binding)]))
    app = screen.app
    sections.append(("Everywhere", [(_keys(b), _describe(app, b)) for b in app.BINDINGS
                                    if isinstance(b, Binding)] + [("Tab / Shift+Tab", "Move between panels")]))
    return sections


class HelpScreen(ModalScreen[None]):
    """The keys of the screen that was on top when ``?`` was pressed."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, screen: Screen) -> None:
        super().__init__(classes="help")
        self.target = screen

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(Content.from_markup("[b]Keys[/b] [dim]— Esc closes · Ctrl+P finds any action by name"))
            with VerticalScroll(id="help-text"):
                for title, keys in key_sections(self.target):
                    if not keys:
                        continue
                    yield Static(Content.from_markup("[b $accent]$t", t=title), classes="help-section")
                    for key, what in keys:
                        with Horizontal(classes="help-row"):
                            yield Static(Content.from_markup("[b]$k", k=key), classes="help-key")
                            yield Static(what, classes="help-what")

    def text(self) -> str:
        """Everything the help shows, as plain text (one key per line)."""
        lines = []
        for row in self.query(".help-section, .help-row"):
            if row.has_class("help-section"):
                lines.append(str(row.render()))  # type: ignore[attr-defined]
            else:
                key, what = row.query(Static)
                lines.append(f"{str(key.render()):<16}{what.render()}")
        return "\n".join(lines)

    async def action_dismiss(self, result: Any = None) -> None:
        """Close the help."""
        self.dismiss(None)
