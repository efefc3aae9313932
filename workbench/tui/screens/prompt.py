"""A one-line question in a modal: Enter answers with the text, Esc cancels (tags, chart keys)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

__all__ = ["TextPrompt"]


class TextPrompt(ModalScreen[str | None]):
    """Ask for a line of text; dismissed with the text (Enter) or None (Esc).

    Args:
        question: The first line (bold).
        detail: What the text means, below it.
        value: The text the field starts with.
        placeholder: Shown while the field is empty.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, detail: str = "", value: str = "", placeholder: str = "") -> None:
        super().__init__(classes="prompt")
        self.question = question
        self.detail = detail
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Static(self.question, id="prompt-question")
            if self.detail:
                yield Static(self.detail, id="prompt-detail")
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)
