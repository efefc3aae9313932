"""The compare screen (stub)."""
from __future__ import annotations
from textual.screen import Screen
class CompareScreen(Screen[None]):
    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids
