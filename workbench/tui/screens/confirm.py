"""A yes/no question in a modal: ``y`` or Enter confirms, ``n`` or Escape cancels."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

__all__ = ["ConfirmScreen"]

#: The marks a list item may start with (see :meth:`ConfirmScreen.item_texts`).
_MARKS = ("▸ ", "  ")


class ConfirmScreen(ModalScreen[bool]):
    """Ask before doing something that cannot be undone (stop, delete), optionally with a list of
    what it does to each run (a batch action on the marked runs)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "", yes: str = "Yes", items: list[Any] | None = None) -> None:
        super().__init__(classes="confirm batch" if items else "confirm")
        self.question = question
        self.detail = detail
        self.yes = yes
        # One line each (a batch: what happens to each run), scrolled; a line may start with a
        # mark ("▸ " or two spaces), kept in a column of its own.
        self.items = list(items or [])

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question")
            if self.detail:
                yield Static(self.detail, id="confirm-detail")
            if self.items:
                with VerticalScroll(id="confirm-list"):
                    for item in self.items:
                        # A leading mark ("▸ ", or two spaces) in a column of its own: a long
                        # line wraps under its text, not under the mark.
                        mark, text = (item[:2], item[2:]) if isinstance(item, str) and item[:2] in _MARKS \
                            else ("", item)
                        with Horizontal(classes="confirm-item"):
                            yield Static(mark, classes="confirm-mark")
                            yield Static(text, classes="confirm-text")
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel (n)", id="no")
                yield Button(f"{self.yes} (y)", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def item_texts(self) -> list[str]:
        """The list's lines as shown, each its mark and its text (tests, debugging)."""
        return [str(row.query_one(".confirm-mark", Static).render()) + str(row.query_one(".confirm-text", Static).render())
                for row in self.query(".confirm-item")]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Answer the question."""
        self.dismiss(yes)
