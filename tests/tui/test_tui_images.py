"""The run screen's Images tab: a key chooser and a step slider over a run's logged images,
drawn as half blocks; Pillow loads only when the tab is shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import make_test_app, settle
from PIL import Image
from textual.widgets import OptionList, Static

from workbench.tui.screens.run import TABS, RunScreen
from workbench.tui.widgets.images import ImagesPanel, ImageView, slider_text

RUN = "2n0000000004"
COLOURS = {10: (255, 0, 0), 20: (0, 255, 0), 30: (0, 0, 255)}


def _write_images(project: Path) -> None:
    folder = project / ".workbench" / "runs" / RUN / "artifacts" / "images"
    (folder / "boundary").mkdir(parents=True)
    for step, colour in COLOURS.items():
        Image.new("RGB", (8, 8), colour).save(folder / "boundary" / f"step-{step:09d}.png")
    (folder / "val" / "sample").mkdir(parents=True)
    Image.new("RGB", (4, 4), (200, 200, 0)).save(folder / "val" / "sample" / "step-000000005.png")


def _drawn_colours(view: ImageView) -> set[tuple[int, int, int]]:
    colours = set()
    for y in range(view.size.height):
        for segment in view.render_line(y):
            if segment.text == "▀" and segment.style is not None and segment.style.color is not None:
                colours.add(segment.style.color.triplet)
    return colours


def _slider(app) -> str:
    return str(app.screen.query_one("#image-slider", Static).render())


async def test_the_images_tab_shows_a_key_and_moves_through_its_steps(filled_project: Path) -> None:
    _write_images(filled_project)
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot, ticks=1)
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == RUN
        assert TABS.index("images") == 7
        await pilot.press("8")
        await settle(pilot)
        panel = app.screen.query_one(ImagesPanel)
        view = app.screen.query_one(ImageView)
        assert list(panel.entries) == ["boundary", "val/sample"]
        assert "boundary" in _slider(app) and "step 30 (3/3)" in _slider(app)  # the newest first
        assert _drawn_colours(view) == {COLOURS[30]}
        await pilot.press("left")
        await settle(pilot)
        assert "step 20 (2/3)" in _slider(app)
        assert _drawn_colours(view) == {COLOURS[20]}
        await pilot.press("left_square_bracket", "left_square_bracket")  # stops at the first
        await settle(pilot)
        assert "step 10 (1/3)" in _slider(app)
        assert _drawn_colours(view) == {COLOURS[10]}
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert "step 20 (2/3)" in _slider(app)
        await pilot.press("down")  # the key chooser: the other key
        await settle(pilot)
        assert app.screen.query_one("#image-keys", OptionList).has_focus
        assert "val/sample" in _slider(app) and "step 5 (1/1)" in _slider(app)
        assert _drawn_colours(view) == {(200, 200, 0)}
        # The picture fills the view: an 8x8 image grows by a whole factor.
        assert view.render_line(0).cell_length >= 16


async def test_a_run_without_images_says_how_to_log_them(filled_project: Path) -> None:
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot, ticks=1)
        await pilot.press("8")
        await settle(pilot)
        assert "self.log_image" in _slider(app)


def test_the_slider_says_where_the_step_lies() -> None:
    assert slider_text(2, 10, 120, width=10).endswith("step 120 (3/10)")
    assert slider_text(0, 1, 5, width=5) == "◀ ●━━━━ ▶  step 5 (1/1)"
    assert slider_text(0, 0, None) == "no images"


_APP_THEN_IMAGES = """
import asyncio, json, sys
from pathlib import Path
from workbench.tui.app import make_app

async def main():
    app = make_app(Path(sys.argv[1]), probe={"devices": ["cpu"], "default": "cpu"}, poll_interval=0)
    found = {}
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.discovery is not None and app.runs.complete:
                break
        await pilot.press("down", "down", "enter")
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        found["start"] = {"torch": "torch" in sys.modules, "PIL": "PIL" in sys.modules}
        await pilot.press("8")
        for _ in range(100):
            await pilot.pause(0.05)
            if "PIL" in sys.modules and not any(w.is_running for w in app.workers):
                break
        found["shown"] = {"torch": "torch" in sys.modules, "PIL": "PIL" in sys.modules}
    print(json.dumps(found))

asyncio.run(main())
"""


def test_the_app_loads_pillow_only_when_the_images_tab_is_shown(filled_project: Path) -> None:
    _write_images(filled_project)
    result = subprocess.run([sys.executable, "-c", _APP_THEN_IMAGES, str(filled_project)], capture_output=True,
                            text=True, timeout=180, cwd=filled_project)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["start"] == {"torch": False, "PIL": False}
    assert found["shown"] == {"torch": False, "PIL": True}
