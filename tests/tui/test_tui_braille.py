"""The braille renderer the charts draw with: dots where the lines are, clipping, log y, layers."""

from __future__ import annotations

import math

from workbench.tui.widgets._braille import AXIS, CURSOR, TEXT, Frame, Series, nice_ticks, render, tick_text

# The dot of each bit of a braille character (Unicode's numbering): bit -> (column, row).
_DOT = {0x01: (0, 0), 0x02: (0, 1), 0x04: (0, 2), 0x40: (0, 3), 0x08: (1, 0), 0x10: (1, 1), 0x20: (1, 2), 0x80: (1, 3)}


def _dots(frame: Frame, key: object = None) -> set[tuple[int, int]]:
    """The lit dots of the plot area as (dot column, dot row from the top); with ``key``, only
    the cells coloured by it."""
    out = set()
    for r, row in enumerate(frame.rows[:-2]):
        c = -frame.left
        for text, style in row:
            for ch in text:
                if c >= 0 and 0x2800 < ord(ch) <= 0x28FF and (key is None or style == key):
                    out |= {(2 * c + dc, 4 * r + dr) for bit, (dc, dr) in _DOT.items() if (ord(ch) - 0x2800) & bit}
                c += 1
    return out


def _sized(series: list[Series], plot_w: int, height: int, **kwargs) -> Frame:
    """A frame whose plot area is ``plot_w`` cells wide (the labels' width found first)."""
    left = render(series, 40, height, **kwargs).left
    frame = render(series, left + plot_w, height, **kwargs)
    assert frame.plot_width == plot_w and all(len(line) == left + plot_w for line in frame.text())
    return frame


def test_a_diagonal_lands_on_the_diagonal_dots_under_labelled_axes() -> None:
    # 4×2 cells = 8×8 dots; from the bottom left to the top right: one dot per column and row.
    frame = _sized([Series([0.0, 7.0], [0.0, 7.0], "a")], 4, 4, x_range=(0.0, 7.0), y_range=(0.0, 7.0))
    assert _dots(frame) == {(i, 7 - i) for i in range(8)}
    lines = frame.text()
    assert lines[0][frame.left - 1] in "┤│" and lines[2].lstrip().startswith("└")
    assert lines[2][frame.left - 1] == "└" and "┬" in lines[2] and "0" in lines[3]
    assert frame.rows[0][0][1] == AXIS and {k for row in frame.rows[:2] for _, k in row[1:]} <= {"a", None}


def test_a_log_axis_straightens_powers_of_ten_and_drops_what_it_cannot_show() -> None:
    xs, ys = [0.0, 1.0, 2.0, 3.0], [1.0, 10.0, 100.0, 0.0]  # the 0 has no place on a log axis
    frame = _sized([Series(xs[:3] + [2.5], ys[:3] + [-1.0], "a")], 20, 10, log_y=True)
    dots = _dots(frame)
    # 40×32 dots: 1 at the bottom, 100 at the top, 10 exactly between (a straight line).
    assert (0, 31) in dots and (39, 0) in dots and dots & {(19, 15), (19, 16), (20, 15), (20, 16)}
    labels = [line[:frame.left - 1].strip() for line in frame.text()[:8]]
    assert "100" in labels and "1" in labels and "10" in labels
    assert frame.y_range == (0.0, 2.0)  # in log10 units
    assert render([Series(xs, ys, "a")], 30, 8, log_y=True, y_range=(1.0, 100.0)).y_range == (0.0, 2.0)


def test_points_past_the_ranges_are_clipped_and_a_spike_off_scale_costs_nothing() -> None:
    xs = [float(x) for x in range(21)]
    frame = _sized([Series(xs, xs, "a")], 10, 6, x_range=(0.0, 10.0), y_range=(0.0, 10.0))
    dots = _dots(frame)
    assert (19, 0) in dots and (0, 15) in dots  # up to the top right corner, no further
    assert all(0 <= c < 20 and 0 <= r < 16 for c, r in dots)
    assert len(frame.text()[0]) == frame.left + 10  # nothing drawn past the plot
    # A start spike far above the y range: the (nearly upright) segment down from it enters at
    # the top edge just before step 1 (dot column 2 of 20); the spike itself is off the plot.
    spike = Series([0.0, 1.0, 2.0, 10.0], [1e12, 2.0, 1.5, 1.0], "a")
    frame = _sized([spike], 10, 6, y_range=(1.0, 2.0))
    dots = _dots(frame)
    assert (2, 0) in dots and (19, 15) in dots and not any(c < 2 for c, _ in dots)
    assert len(dots) < 60


def test_the_last_series_colours_the_cells_it_shares_and_every_dot_shows() -> None:
    low = Series([0.0, 9.0], [0.0, 0.0], "under")
    high = Series([0.0, 9.0], [0.3, 0.3], "over")  # the same cell row, other dots
    # 10×12 dots: y 0 on dot row 11, y 0.3 on row 8; both in the bottom row of cells.
    frame = _sized([low, high], 5, 5, x_range=(0.0, 9.0), y_range=(0.0, 1.0))
    assert {k for _, k in frame.rows[0][1:]} == {None}
    assert {k for _, k in frame.rows[2][1:]} == {"over"}  # on top where they share a cell
    assert _dots(frame) == {(c, r) for c in range(10) for r in (8, 11)}  # the one below still shows
    swapped = _sized([high, low], 5, 5, x_range=(0.0, 9.0), y_range=(0.0, 1.0))
    assert {k for _, k in swapped.rows[2][1:]} == {"under"}


def test_empty_single_point_and_cursor() -> None:
    empty = render([Series([], [], "a")], 30, 6, message="no points yet")
    assert not _dots(empty) and "no points yet" in "".join(empty.text())
    assert [k for row in empty.rows for _, k in row if k not in (None, AXIS)] == [TEXT]
    single = render([Series([5.0], [3.0], "a"), Series([1.0, 2.0], [math.nan, math.inf], "b")], 30, 6)
    assert len(_dots(single)) == 1 and "3" in "".join(single.text()) and "5" in single.text()[-1]
    cursor = _sized([Series([0.0, 10.0], [0.0, 0.0], "a")], 10, 4, x_range=(0.0, 10.0), cursor=5.0)
    column = {r for c, r in _dots(cursor, CURSOR)}
    assert column == set(range(4)) and {c for c, _ in _dots(cursor, CURSOR)} == {10}
    assert render([Series([1.0], [1.0], "a")], 3, 2).text() == ["   ", "   "]  # too small: blank


def test_ticks_are_round_and_labelled_to_their_spacing() -> None:
    ticks, labels = nice_ticks(0.22, 0.88, 4)
    assert ticks == [0.25, 0.5, 0.75] and labels == ["0.25", "0.50", "0.75"]
    assert nice_ticks(0.22, 0.88, 8)[1] == ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8"]
    assert nice_ticks(0, 1200, 4)[1] == ["0", "500", "1000"]
    assert tick_text(2.5e-5, 1e-5) == "2.5e-05" and tick_text(3e6, 1e6) == "3e+06"
    # A short plot still gets two labels (one alone does not say the scale), on a log axis too.
    for log_y in (False, True):
        short = render([Series([0.0, 70.0], [0.22, 0.88], "a")], 40, 5, log_y=log_y)
        assert sum("┤" in line for line in short.text()[:3]) >= 2
