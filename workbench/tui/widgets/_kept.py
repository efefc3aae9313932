"""Widgets that hand Textual the lines they gave last time, while nothing about them changed.

Textual paints the smallest rectangle around everything that changed: when the nine plots of
a chart grid draw again, every widget inside that rectangle (each chart's legend, the charts
themselves, the grid and the panels around it) is asked for its lines too. Textual keeps those
lines (a widget's lines change only with its ``refresh``), but each ask still costs the
widget's style look-ups — its background through every ancestor, its opacity, its filters —
about a quarter of a millisecond a widget, a few milliseconds a tick.

:class:`KeptLines` answers such an ask with the lines it returned for the same crop, and asks
Textual again after anything that could change them: a refresh (an update, a scroll, a new
size's layout), a style change (focus, hover, theme, CSS), another crop or size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.containers import Grid, Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.geometry import Region
    from textual.strip import Strip
    from typing_extensions import Self

__all__ = ["KeptGrid", "KeptHorizontal", "KeptLines", "KeptStatic", "KeptVertical"]

if TYPE_CHECKING:
    _Base = Widget
else:
    _Base = object


class KeptLines(_Base):
    """A widget whose lines, once rendered, are handed back until it refreshes or restyles.

    A mixin, put before the Textual class in the bases (``class KeptStatic(KeptLines,
    Static)``). Not a widget class itself: Textual takes a widget's CSS type names (what
    ``Static`` or ``Vertical`` in a style sheet match) along the first widget base only, so
    a widget base here would hide the Textual class's default styles.
    """

    _kept: tuple[Any, list[Strip]] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        # (The outer size is a plain attribute; the content size and region are look-ups.)
        key = (crop, self.outer_size, tuple(self.app.get_line_filters()))
        kept = self._kept
        if kept is not None and kept[0] == key:
            return list(kept[1])
        strips = super().render_lines(crop)
        self._kept = (key, strips)
        return list(strips)

    def refresh(self, *regions: Any, **kwargs: Any) -> Self:
        self._kept = None
        return super().refresh(*regions, **kwargs)

    def notify_style_update(self) -> None:
        self._kept = None
        super().notify_style_update()

    def _set_dirty(self, *regions: Region) -> None:
        self._kept = None
        super()._set_dirty(*regions)


class KeptStatic(KeptLines, Static):
    """A :class:`~textual.widgets.Static` that keeps its lines (see :class:`KeptLines`)."""


class KeptVertical(KeptLines, Vertical):
    """A :class:`~textual.containers.Vertical` that keeps its lines (see :class:`KeptLines`)."""


class KeptHorizontal(KeptLines, Horizontal):
    """A :class:`~textual.containers.Horizontal` that keeps its lines (see :class:`KeptLines`)."""


class KeptGrid(KeptLines, Grid):
    """A :class:`~textual.containers.Grid` that keeps its lines (see :class:`KeptLines`)."""
