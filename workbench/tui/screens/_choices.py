"""The launch form's radio sets (device, backend, where, a fork's code)."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import RadioSet

__all__ = ["Choices"]


class Choices(RadioSet, inherit_bindings=False):
    """A radio set whose Enter is the form's (launch), not a toggle: arrows move, space picks."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,right", "next_button", "Next option", show=False),
        Binding("space", "toggle_button", "Choose", show=False),
        Binding("up,left", "previous_button", "Previous option", show=False),
    ]
