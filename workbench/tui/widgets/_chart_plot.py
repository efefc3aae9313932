"""A chart's drawing area: the braille frame as styled strips, kept until the next repaint.

Split from :mod:`workbench.tui.widgets.chart` (the chart widget, its keys and its data): this
is the part Textual paints, line by line, and the part a tick's repaint costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style as RichStyle

from textual import events
from textual.color import Color
from textual.geometry import Region
from textual.filter import ANSIToTruecolor, LineFilter
from textual.strip import Strip
from textual.widget import Widget

from workbench.tui.widgets._braille import AXIS, CURSOR, TEXT, Frame

if TYPE_CHECKING:
    from typing_extensions import Self

    from workbench.tui.widgets.chart import MetricChart

__all__ = ["Plot"]


class Plot(Widget):
    """The drawing area: the chart's braille frame, drawn once per repaint and kept as strips."""

    def __init__(self, chart: MetricChart) -> None:
        super().__init__(classes="chart-plot")
        self._chart = chart
        self._strips: list[Strip] | None = None
        self._for: tuple[Any, ...] | None = None
        self.frame: Frame | None = None
        self._base: tuple[str, RichStyle] | None = None
        self._plain: tuple[int, bool] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        # Textual passes every line of a widget through its styles cache: borders, padding,
        # outline, tint, opacity, a copy of the strip — and a look-up of the background through
        # every ancestor. The drawing area has none of those (its styles are checked, again
        # whenever its styles change), so its strips go to the screen as they are: a grid of nine
        # charts repaints ~75 of these lines a tick.
        styles = self.styles._cache_key  # (changes with any of the widget's styles)
        if self._plain is None or self._plain[0] != styles:
            self._plain = (styles, _is_plain(self))
        if not self._plain[1]:
            return super().render_lines(crop)
        strips = [self.render_line(y) for y in crop.line_range]
        filters = self.get_line_filters()
        if filters:
            background = self.background_colors[1]
            for line_filter in filters:
                strips = [strip.apply_filter(line_filter, background) for strip in strips]
        x1, x2 = crop.column_span
        if (x1, x2) != (0, self.outer_size.width):
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def refresh(self, *regions: Any, **kwargs: Any) -> Self:
        self._strips = None  # drawn again on the next paint
        return super().refresh(*regions, **kwargs)

    def render_line(self, y: int) -> Strip:
        # (Styles change only with a refresh, which drops the strips: a theme, a focus. The
        # outer size is a plain attribute: the content size is looked up only to draw.)
        outer = self.outer_size
        if self._strips is None or self._for != outer:
            self._for = outer
            width, height = self.size
            # The base style walks every ancestor's styles: kept until the theme or CSS changes.
            theme = self.app.theme
            if self._base is None or self._base[0] != theme:
                self._base = (theme, self.rich_style)
            self._strips = self.render_strips(width, height, self._base[1])
        return self._strips[y] if 0 <= y < len(self._strips) else \
            Strip.blank(self.size.width, self._base[1] if self._base else None)

    def get_line_filters(self) -> Sequence[LineFilter]:
        # The frame's colours are RGB and its base style comes from the theme: with an RGB base
        # there is no ANSI colour to turn into the theme's RGB (that filter costs a new strip
        # per line, and a grid draws 75 lines a tick). Other filters (NO_COLOR) still apply.
        filters = super().get_line_filters()
        base = self._base[1] if self._base is not None else None
        if base is None or not _all_rgb(base):
            return filters
        return [f for f in filters if not isinstance(f, ANSIToTruecolor)]

    def notify_style_update(self) -> None:
        self._base = None
        self._plain = None
        self._strips = None  # (a padding could change the content size within the same outer size)
        super().notify_style_update()

    def render_strips(self, width: int, height: int, base: RichStyle) -> list[Strip]:
        """Draw the chart (the benchmark times this)."""
        self.frame = self._chart.draw(width, height)
        return _strips(self.frame, base, width)

    def on_resize(self, event: events.Resize) -> None:
        self._chart.resized(event.size.width)

    def on_click(self, event: events.Click) -> None:
        self._chart.click_at(event.x, self.size.width)


def _is_plain(widget: Widget) -> bool:
    """Whether Textual's styles cache would hand the widget's content lines on unchanged: no
    border, padding or outline, no tint, hatch or text opacity, fully opaque."""
    styles = widget.styles
    return (
        not any(styles.gutter)
        and not any(edge for edge, _ in styles.outline)
        and not styles.tint.a
        and styles.text_opacity == 1.0
        and (not styles.has_rule("hatch") or styles.hatch == "none")
        and widget.opacity == 1.0
        and widget.border_title is None
        and widget.border_subtitle is None
    )


def _all_rgb(style: RichStyle) -> bool:
    """Whether the style's colours (if any) are RGB, not ANSI or the terminal's default, and it
    is not dim (what the ANSI-to-RGB filter would change)."""
    return not style.dim and all(color is None or color.triplet is not None for color in (style.color, style.bgcolor))


def _strips(frame: Frame, base: RichStyle, width: int) -> list[Strip]:
    """The frame's runs as styled segments (series keys are RGB colours)."""
    styles = _styles(base)
    out = []
    for row in frame.rows:
        segments = []
        for text, key in row:
            style = styles.get(key)
            if style is None:
                style = styles[key] = base + RichStyle(color=RichColor.from_rgb(*key))
            segments.append(Segment(text, style))
        out.append(Strip(segments, width))
    return out


_STYLES: dict[RichStyle, dict[Any, RichStyle]] = {}


def _styles(base: RichStyle) -> dict[Any, RichStyle]:
    """The styles of a frame's keys on ``base`` (kept: the charts of a screen share one base):
    the axis in the text colour, the cursor and messages halfway to the background; series
    colours are added as they come."""
    styles = _STYLES.get(base)
    if styles is None or len(styles) > 256:
        fg = Color.from_rich_color(base.color) if base.color is not None else Color(200, 200, 200)
        bg = Color.from_rich_color(base.bgcolor) if base.bgcolor is not None else Color(0, 0, 0)
        muted = base + RichStyle(color=fg.blend(bg, 0.5).rich_color)
        styles = {None: base, AXIS: base + RichStyle(color=fg.blend(bg, 0.25).rich_color), CURSOR: muted,
                  TEXT: muted}
        if len(_STYLES) > 16:
            _STYLES.clear()
        _STYLES[base] = styles
    return styles
