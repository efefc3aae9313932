"""Lines handed to Textual without its per-call style work: the kept widgets and the chart's
drawing area give the screen exactly what Textual's own path would, and stop keeping when
anything that could change them does."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Static

from workbench.tui.widgets._braille import Series, render
from workbench.tui.widgets._chart_plot import Plot
from workbench.tui.widgets._kept import KeptHorizontal, KeptStatic, KeptVertical


class _Chart:
    """What the drawing area asks of its chart: a frame to draw, and where the user clicked."""

    def __init__(self) -> None:
        self.draws = 0

    def draw(self, width: int, height: int) -> Any:
        self.draws += 1
        xs = list(range(50))
        return render([Series(xs, [x * x for x in xs], (200, 80, 40)), Series(xs, xs, (40, 160, 220))],
                      width, height)

    def resized(self, width: int) -> None:
        pass

    def click_at(self, x: int, width: int) -> None:
        pass


class _Host(App[None]):
    def __init__(self, kept: bool) -> None:
        super().__init__()
        self.kept = kept
        self.chart = _Chart()

    def compose(self) -> ComposeResult:
        row, column, static = (KeptHorizontal, KeptVertical, KeptStatic) if self.kept else (Horizontal, Vertical, Static)
        with row(id="top"):
            yield static("title", id="title")
            yield static("summary", id="summary")
        with row(id="body"):
            with column(id="left"):
                yield static("left")
            with column(id="right"):
                yield Plot(self.chart)  # type: ignore[arg-type]


def _text(widget: Widget) -> list[str]:
    return [strip.text for strip in widget.render_lines(Region(0, 0, *widget.outer_size))]


async def test_kept_containers_lay_out_as_textuals_own() -> None:
    """A kept container keeps its Textual class's default styles (a widget base before it
    would hide them: Textual reads CSS type names along the first widget base)."""
    layouts = []
    for kept in (False, True):
        app = _Host(kept)
        async with app.run_test(size=(60, 12)) as pilot:
            await pilot.pause()
            layouts.append([(w.id, w.region, str(w.styles.layout)) for w in app.query("*") if w.id])
    assert layouts[0] == layouts[1]
    assert dict((i, r) for i, r, _ in layouts[1])["right"].x == 30  # side by side, not stacked


async def test_a_kept_static_shows_its_update_and_its_new_size() -> None:
    app = _Host(kept=True)
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause()
        title = app.query_one("#title", Static)
        first = _text(title)
        assert first[0].startswith("title") and len(first[0]) == title.outer_size.width == 60
        assert _text(title) == first  # asked again: the same lines
        title.update("another title")
        await pilot.pause()
        assert _text(title)[0].startswith("another title")
        before = [segment.style for segment in title.render_lines(Region(0, 0, *title.outer_size))[0]]
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"
        await pilot.pause()
        after = [segment.style for segment in title.render_lines(Region(0, 0, *title.outer_size))[0]]
        assert after != before  # a new theme: drawn again in its colours
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert len(_text(title)[0]) == title.outer_size.width == 40


async def test_the_drawing_area_gives_the_lines_textual_would() -> None:
    app = _Host(kept=False)
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.pause()
        plot = app.query_one(Plot)
        whole = Region(0, 0, *plot.outer_size)
        part = Region(3, 1, 10, 4)
        for crop in (whole, part):
            ours = plot.render_lines(crop)
            textual = Widget.render_lines(plot, crop)
            assert [list(s) for s in ours] == [list(s) for s in textual]
        assert any("⠀" < ch <= "⣿" for line in _text(plot) for ch in line)  # curves were drawn
        # Padding (or a tint, a border...) goes through Textual's own path again.
        plot.styles.padding = (0, 2)
        await pilot.pause()
        assert all(line.startswith("  ") for line in _text(plot))
        assert [list(s) for s in plot.render_lines(whole)] == [list(s) for s in Widget.render_lines(plot, whole)]
