"""Run colours: distinct, legible on the background and on the table's cursor, in every
built-in theme, and kept across restarts."""

from __future__ import annotations

from pathlib import Path

from typing import Any

from conftest import NOW, make_test_app, settle
from textual.app import App, ComposeResult
from textual.color import Color, Lab
from textual.theme import BUILTIN_THEMES

from workbench.store import RunIndex
from workbench.tui._state import RunCache

from workbench.tui.colors import (
    MIN_BETWEEN,
    MIN_FROM_BACKGROUND,
    MIN_FROM_CURSOR,
    RunColors,
    _ciede2000_lab,
    _parse,
    ciede2000,
    cursor_colors,
    palette,
)
from workbench.tui.widgets.run_table import RunTable, Selection

#: What the table's cursor row must keep between each character's colour and its background.
LEGIBLE = 20.0


def test_ciede2000_matches_the_published_test_data() -> None:
    # Sharma, Wu and Dalal (2005), table 1: pairs 1, 4, 17 and 34.
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
             ((50, -1.3802, -84.2814), (50, 0, -82.7485), 1.0000),
             ((50, 2.5, 0), (73, 25, -18), 27.1492),
             ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441)]
    for first, second, expected in pairs:
        assert abs(_ciede2000_lab(Lab(*first), Lab(*second)) - expected) < 1e-4


def test_every_theme_gets_a_distinct_legible_palette() -> None:
    worst = {"background": 100.0, "cursor": 100.0, "between": 100.0}
    for name, theme in BUILTIN_THEMES.items():
        variables = theme.to_color_system().generate()
        colours = palette(variables, theme.dark)
        assert len(colours) >= 8, name
        background = _parse(variables["background"], "#121212" if theme.dark else "#F0F0F0")
        cursors = cursor_colors(variables, theme.dark)
        worst["background"] = min(worst["background"], *(ciede2000(c, background) for c in colours))
        worst["cursor"] = min(worst["cursor"], *(ciede2000(c, k) for c in colours for k in cursors))
        worst["between"] = min(worst["between"], *(ciede2000(a, b) for i, a in enumerate(colours)
                                                   for b in colours[i + 1:]))
        # The cursor itself must show: it differs from the background.
        assert ciede2000(cursors[0], background) >= 10, name
    assert worst["background"] >= MIN_FROM_BACKGROUND
    assert worst["cursor"] >= MIN_FROM_CURSOR
    assert worst["between"] >= MIN_BETWEEN


def test_slots_are_kept_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / ".workbench" / "run-colors.json"
    colors = RunColors(path)
    assert [colors.slot(r) for r in ("a", "b", "c")] == [0, 1, 2]
    colors.save()
    again = RunColors(path)
    assert again.slot("c") == 2 and again.slot("a") == 0
    assert again.slot("d") == 3  # a new run takes the next slot, not a taken one
    again.save(keep={"c", "d"})  # deleted runs are forgotten; their slots are not reused
    last = RunColors(path)
    assert last.slot("d") == 3 and last.slot("e") == 4 and last.slot("a") == 5
    path.write_text("{not json")
    assert RunColors(path).slot("x") == 0  # an unreadable file is a fresh start, not an error


class TableHost(App[None]):
    """Only the run table (restyling the whole app 21 times costs seconds), fed like the app."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.runs = RunCache(lambda: NOW)
        with RunIndex(root / ".workbench" / "index.db") as index:
            self.runs.apply(index.list_runs())
            self.runs.set_last({r.id: index.last_metrics(r.id) for r in index.list_runs()})
        self.runs.complete = True
        self.run_colors = RunColors()

    def compose(self) -> ComposeResult:
        yield RunTable(self.runs, self.run_colors, Selection(), clock=lambda: NOW)

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme: Any) -> None:
        self.run_colors.set_theme(self.theme_variables, self.current_theme.dark)
        self.query_one(RunTable).refresh()


async def test_the_cursor_row_stays_legible_in_every_theme(filled_project: Path) -> None:
    app = TableHost(filled_project)
    async with app.run_test(size=(140, 12)) as pilot:
        table = app.query_one(RunTable)
        table.focus()
        table.data_changed(force=True)
        await pilot.pause()
        assert table.current == "2n0000000006"  # running: a coloured name and status
        worst = (100.0, "")
        for name in BUILTIN_THEMES:
            app.theme = name
            await pilot.pause()
            for y in (1, 2):  # the cursor row (focused) and a plain row
                for segment in table.render_line(y):
                    style = segment.style
                    if not segment.text.strip() or style is None or style.color is None or style.bgcolor is None:
                        continue
                    if style.color.triplet is None or style.bgcolor.triplet is None:
                        continue  # an ANSI theme: the terminal's own colours
                    fg = Color(*style.color.triplet)
                    bg = Color(*style.bgcolor.triplet)
                    difference = ciede2000(fg, bg)
                    if difference < worst[0]:
                        worst = (difference, f"{name}: {segment.text!r} {fg.hex6} on {bg.hex6}")
        assert worst[0] >= LEGIBLE, worst[1]


async def test_runs_keep_their_colours_across_restarts_and_themes(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, ticks=1)
        before = {run_id: app.run_colors.slot(run_id) for run_id in app.runs.view}
        await pilot.press("q")
    with RunIndex(filled_project / ".workbench" / "index.db") as index:
        index.create_run(id="2n0000000009", name="new-run-9", task="SineRegression", status="completed",
                         created_at=NOW - 10, started_at=NOW - 9, ended_at=NOW - 1)
    app = make_test_app(filled_project)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, ticks=1)
        assert app.runs.view[0] == "2n0000000009"  # seen first now, yet it does not take slot 0
        assert {run_id: app.run_colors.slot(run_id) for run_id in before} == before
        assert app.run_colors.slot("2n0000000009") == len(before)
        # A theme change recolours every run at once (slots stay).
        app.theme = "catppuccin-latte"
        await pilot.pause()
        variables = BUILTIN_THEMES["catppuccin-latte"].to_color_system().generate()
        assert app.run_colors.cursor() == cursor_colors(variables, False)[0]
        assert app.run_colors.colours == palette(variables, False)
        assert app.run_colors.slot("2n0000000009") == len(before)
