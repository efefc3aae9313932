"""How the app draws logged images: half blocks everywhere, Kitty's graphics protocol or
Sixel (through textual-image) where the terminal says it can — chosen once, before the app
starts, on a real pseudo-terminal here."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from conftest import make_test_app, settle
from PIL import Image
from test_tui_images import RUN, _write_images

from workbench.tui import _graphics
from workbench.tui.widgets.images import ImageView, crisp

#: Runs choose() with stdout on a pseudo-terminal (nobody answers its queries: as a terminal
#: without graphics would); prints the choice, its reason, and whether textual-image loaded.
CHOOSE = """
import os, sys
from workbench.tui import _graphics
kind, why = _graphics.choose(stdout=open(os.ttyname(1), "w"))
print(kind, "|", why, "|", "textual_image" in sys.modules, file=sys.stderr)
"""


def _choose_on_a_pty(**env: str) -> tuple[str, str, bool]:
    leader, follower = pty.openpty()
    # 40 lines of 140 columns, 8 x 16 pixels a cell (a new pty is 0 x 0)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 140 * 8, 40 * 16))
    environ = {k: v for k, v in os.environ.items() if k not in ("TMUX", "STY", "TERM_PROGRAM", "KITTY_WINDOW_ID")}
    try:
        done = subprocess.run([sys.executable, "-c", CHOOSE], stdin=follower, stdout=follower,
                              stderr=subprocess.PIPE, text=True, timeout=60, env={**environ, **env})
    finally:
        os.close(follower)
        os.close(leader)
    kind, why, loaded = (part.strip() for part in done.stderr.strip().splitlines()[-1].split("|"))
    return kind, why, loaded == "True"


def test_a_plain_terminal_gets_half_blocks_without_loading_textual_image() -> None:
    kind, why, loaded = _choose_on_a_pty(TERM="xterm-256color", WORKBENCH_IMAGES="auto")
    assert (kind, loaded) == ("halfblocks", False) and "does not say it shows graphics" in why


def test_tmux_never_asks_even_a_kitty_terminal() -> None:
    kind, _, loaded = _choose_on_a_pty(TERM="xterm-kitty", TMUX="/tmp/tmux-0/default,1,0")
    assert (kind, loaded) == ("halfblocks", False)


def test_a_kitty_terminal_is_asked_and_one_that_does_not_answer_gets_half_blocks() -> None:
    kind, why, loaded = _choose_on_a_pty(TERM="xterm-kitty")
    assert loaded and kind == "halfblocks" and "did not answer" in why


def test_the_environment_variable_forces_a_protocol() -> None:
    assert _choose_on_a_pty(TERM="xterm", WORKBENCH_IMAGES="kitty")[:2] == ("kitty", "WORKBENCH_IMAGES=kitty")
    assert _choose_on_a_pty(TERM="xterm-kitty", WORKBENCH_IMAGES="halfblocks")[0] == "halfblocks"


def test_no_terminal_means_half_blocks_and_a_bad_value_is_one_line(tmp_path: Path) -> None:
    with open(os.devnull, "w") as pipe:
        assert _graphics.choose({"WORKBENCH_IMAGES": "sixel"}, pipe)[0] == "halfblocks"
    with pytest.raises(ValueError, match="WORKBENCH_IMAGES is 'png'; expected one of auto, halfblocks"):
        _graphics.choose({"WORKBENCH_IMAGES": "png"}, sys.stdout)
    (tmp_path / "workbench.toml").write_text("[project]\nname = 'x'\n")
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "tui"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "WORKBENCH_IMAGES": "png"}, timeout=60)
    assert done.returncode == 2 and "WORKBENCH_IMAGES is 'png'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / ".workbench").exists()


def test_a_small_image_grows_by_whole_factors() -> None:
    big = crisp(Image.new("RGB", (48, 40), (1, 2, 3)))
    assert big.size == (48 * 16, 40 * 16) and big.getpixel((767, 639)) == (1, 2, 3)
    large = Image.new("RGB", (1000, 10))
    assert crisp(large) is large


async def test_the_images_tab_draws_through_the_kitty_widget(filled_project: Path, monkeypatch) -> None:
    from textual_image.widget import TGPImage

    monkeypatch.setattr(_graphics, "_chosen", _graphics.KITTY)  # as choose() leaves it in Kitty
    _write_images(filled_project)
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot, ticks=1)
        assert app.screen.run_id == RUN
        await pilot.press("8")
        await settle(pilot)
        view = app.screen.query_one(ImageView)
        graphic = view.query_one(TGPImage)
        assert view.protocol == "kitty" and graphic.display
        assert graphic.image.size == (8 * 96, 8 * 96) and graphic.image.getpixel((0, 0)) == (0, 0, 255)
        await pilot.press("left")
        await settle(pilot)
        assert graphic.image.getpixel((0, 0)) == (0, 255, 0)
