"""Run colours: each run keeps one colour for as long as the app is open.

A run gets the next free *slot* the first time the app sees it; the slot's colour comes
from the current Textual theme (its primary, secondary, accent, warning, success and
error colours, then lighter and darker shades of them), so a theme change recolours every
run at once and no run ever changes slot.
"""

from __future__ import annotations

from textual.color import Color

__all__ = ["RunColors", "palette", "theme_color"]

_BASES = ("primary", "accent", "success", "error", "warning", "secondary")
_SHADES = ("", "-lighten-2", "-darken-2", "-lighten-3", "-darken-3")
_FALLBACK = ("#0178D4", "#ffa62b", "#4EBF71", "#ba3c5b", "#e0c341", "#8f5fd7")


def theme_color(variables: dict[str, str], name: str) -> str:
    """A theme colour (``success``, ``error``, ...) as ``#rrggbb`` for Rich styles."""
    try:
        return Color.parse(variables[name]).hex6
    except Exception:
        return {"success": "#4EBF71", "error": "#ba3c5b", "warning": "#ffa62b"}.get(name, "#888888")


def palette(variables: dict[str, str]) -> list[Color]:
    """Distinct colours from a theme's CSS variables (``App.theme_variables``)."""
    colours: list[Color] = []
    seen: set[tuple[int, int, int]] = set()
    try:
        background = Color.parse(variables.get("background", "#121212"))
    except Exception:
        background = Color.parse("#121212")
    for shade in _SHADES:
        for position, base in enumerate(_BASES):
            text = variables.get(base + shade) or (_FALLBACK[position] if not shade else None)
            if not text:
                continue
            try:
                colour = Color.parse(text)
            except Exception:  # a theme with an odd value: skip it
                continue
            rgb = (colour.r // 24, colour.g // 24, colour.b // 24)
            if rgb in seen or abs(colour.brightness - background.brightness) < 0.25:
                # the same colour again, or one too close to the background to read
                continue
            seen.add(rgb)
            colours.append(colour)
    return colours or [Color.parse(c) for c in _FALLBACK]


class RunColors:
    """Hands out colour slots to runs, first come first served, and never takes one back."""

    def __init__(self) -> None:
        self._slots: dict[str, int] = {}
        self._palette: list[Color] = [Color.parse(c) for c in _FALLBACK]

    def set_theme(self, variables: dict[str, str]) -> None:
        """Use the colours of the current theme."""
        self._palette = palette(variables)

    def slot(self, run_id: str) -> int:
        """The run's slot (assigned on first call)."""
        slot = self._slots.get(run_id)
        if slot is None:
            slot = self._slots[run_id] = len(self._slots)
        return slot

    def color(self, run_id: str) -> Color:
        """The run's colour."""
        return self._palette[self.slot(run_id) % len(self._palette)]

    def hex(self, run_id: str) -> str:
        """The run's colour as ``#rrggbb``."""
        return self.color(run_id).hex6

    def rgb(self, run_id: str) -> tuple[int, int, int]:
        """The run's colour as an RGB tuple (what plotext takes)."""
        colour = self.color(run_id)
        return (colour.r, colour.g, colour.b)
