"""The run screen (stub)."""
from __future__ import annotations
from textual.screen import Screen
class RunScreen(Screen[None]):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
