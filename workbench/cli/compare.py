"""``workbench compare`` and ``workbench export`` (filled in by their own change)."""

from __future__ import annotations

__all__ = ["COMMANDS"]

COMMANDS: list = []
