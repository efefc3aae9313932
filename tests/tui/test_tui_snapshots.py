"""Screenshots of each screen at a fixed size over a hand-filled index (fixed clock, UTC).

Regenerate after an intended change of the screens with
``pytest tests/tui/test_tui_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path

from conftest import make_test_app, settle


def test_main_screen(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=3)

    assert snap_compare(make_test_app(filled_project), terminal_size=(120, 36), run_before=ready)


def test_main_screen_small_terminal(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=3)

    assert snap_compare(make_test_app(filled_project), terminal_size=(80, 24), run_before=ready)


def test_main_screen_filtered_and_marked(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=2)
        await pilot.press("slash", *"lr<0.015", "enter", "space", "space")
        await settle(pilot, ticks=2)

    assert snap_compare(make_test_app(filled_project), terminal_size=(120, 36), run_before=ready)


def test_chart_cursor(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=3)
        pilot.app.screen.query_one("#chart").focus()
        await pilot.press("left", "shift+left", "shift+left")
        await settle(pilot, ticks=1)

    assert snap_compare(make_test_app(filled_project), terminal_size=(120, 36), run_before=ready)


def test_launch_form_with_a_bad_value(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=2)
        await pilot.press("n")  # the selected run's task: SineRegression
        await settle(pilot, ticks=1)
        await pilot.press("tab", "end", "backspace", "backspace", "backspace", "backspace", "backspace", *"abc")
        await settle(pilot, ticks=1)

    assert snap_compare(make_test_app(filled_project), terminal_size=(120, 36), run_before=ready)


def test_run_screen_overview_of_a_failed_run(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=2)
        await pilot.press("down", "down", "down", "enter")
        await settle(pilot, ticks=2)

    assert snap_compare(make_test_app(filled_project), terminal_size=(120, 36), run_before=ready)


def test_run_screen_metrics(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=2)
        await pilot.press("enter", "3")
        await settle(pilot, ticks=3)

    assert snap_compare(make_test_app(filled_project), terminal_size=(120, 36), run_before=ready)


def test_compare_screen(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=2)
        await pilot.press("space", "down", "down", "space", "space", "c")
        await settle(pilot, ticks=3)
        await pilot.press("p", "p")  # pin the second compared run: the baseline of the deltas
        await settle(pilot, ticks=2)

    assert snap_compare(make_test_app(filled_project), terminal_size=(120, 40), run_before=ready)


def test_help_screen(snap_compare, filled_project: Path) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, ticks=1)
        await pilot.press("question_mark")
        await settle(pilot, ticks=0)

    assert snap_compare(make_test_app(filled_project), terminal_size=(100, 40), run_before=ready)


def test_compare_screen_140x40(snap_compare, filled_project: Path) -> None:
    """At 140×40 the answer is visible without scrolling: metric rows first, the config that
    differs next, the code diff beside the charts."""
    async def ready(pilot) -> None:
        await settle(pilot, ticks=2)
        await pilot.press("space", "space", "space", "c")
        await settle(pilot, ticks=3)

    assert snap_compare(make_test_app(filled_project), terminal_size=(140, 40), run_before=ready)
