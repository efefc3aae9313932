"""Which way the app draws logged images: terminal graphics (Kitty's protocol or Sixel,
through ``textual-image``) or half blocks (every terminal with colour, and tests).

Asking a terminal what it supports means writing an escape sequence and reading the answer
from stdin, which only works *before* Textual starts reading the keyboard; and the library
that asks costs ~0.3 s to import. So :func:`choose` runs once, before the app starts, and
asks only a terminal that says it may support graphics (``TERM``/``TERM_PROGRAM`` of Kitty,
WezTerm, iTerm2, Ghostty, foot, mlterm, Konsole, Contour), never inside tmux or screen
(which do not pass the images through), and never when ``textual-image`` is not installed.

``WORKBENCH_IMAGES`` overrides: ``auto`` (the default), ``halfblocks``, ``kitty`` or ``sixel``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["HALFBLOCKS", "KITTY", "PROTOCOLS", "SIXEL", "choose", "graphic_widget", "protocol"]

HALFBLOCKS = "halfblocks"
KITTY = "kitty"
SIXEL = "sixel"
#: The values ``WORKBENCH_IMAGES`` accepts.
PROTOCOLS = ("auto", HALFBLOCKS, KITTY, SIXEL)

_TERMS = ("kitty", "wezterm", "ghostty", "foot", "mlterm", "contour")
_PROGRAMS = ("wezterm", "iterm.app", "ghostty", "konsole", "contour", "mlterm")
_chosen = HALFBLOCKS


def protocol() -> str:
    """The protocol :func:`choose` picked for this process (half blocks until it ran)."""
    return _chosen


def _may_show_graphics(environ: Mapping[str, str]) -> bool:
    if environ.get("TMUX") or environ.get("STY"):
        return False
    term = environ.get("TERM", "").lower()
    program = environ.get("TERM_PROGRAM", "").lower()
    return (any(name in term for name in _TERMS) or program in _PROGRAMS
            or bool(environ.get("KITTY_WINDOW_ID")) or bool(environ.get("KONSOLE_VERSION")))


def choose(environ: Mapping[str, str] | None = None, stdout: Any = None) -> tuple[str, str]:
    """Pick how images are drawn, before the app starts; returns ``(protocol, why)``.

    Args:
        environ: The environment (default ``os.environ``).
        stdout: The stream the app draws on (default ``sys.__stdout__``).

    Raises:
        ValueError: ``WORKBENCH_IMAGES`` holds none of :data:`PROTOCOLS` (the message says so).
    """
    global _chosen
    environ = os.environ if environ is None else environ
    stdout = sys.__stdout__ if stdout is None else stdout
    wanted = environ.get("WORKBENCH_IMAGES", "auto").strip().lower() or "auto"
    _chosen, why = _decide(wanted, environ, stdout)
    return _chosen, why


def _decide(wanted: str, environ: Mapping[str, str], stdout: Any) -> tuple[str, str]:
    if wanted not in PROTOCOLS:
        raise ValueError(f"the environment variable WORKBENCH_IMAGES is {wanted!r}; expected one of "
                         f"{', '.join(PROTOCOLS)} (how the app draws logged images)")
    if wanted == HALFBLOCKS:
        return HALFBLOCKS, "WORKBENCH_IMAGES=halfblocks"
    if stdout is None or not stdout.isatty():
        return HALFBLOCKS, "not a terminal"
    if wanted == "auto" and not _may_show_graphics(environ):
        return HALFBLOCKS, "the terminal does not say it shows graphics (WORKBENCH_IMAGES=kitty or sixel to try)"
    try:
        import textual_image.widget  # noqa: F401 - asks the terminal (must happen before the app starts)
        from textual_image.renderable import SixelImage, TGPImage
        from textual_image.renderable import Image as Detected
    except ImportError:
        return HALFBLOCKS, "textual-image is not installed (pip install 'workbench[images]')"
    except Exception as exc:  # noqa: BLE001 - a terminal that answers oddly: half blocks, said once
        return HALFBLOCKS, f"asking the terminal about graphics failed ({exc})"
    if wanted in (KITTY, SIXEL):
        return wanted, f"WORKBENCH_IMAGES={wanted}"
    if Detected is SixelImage:
        return SIXEL, "the terminal answered that it shows Sixel images"
    if Detected is TGPImage:
        return KITTY, "the terminal answered that it speaks Kitty's graphics protocol"
    return HALFBLOCKS, "the terminal did not answer a graphics query"


def graphic_widget(kind: str, **kwargs: Any) -> Any:
    """A ``textual-image`` widget drawing with ``kind`` (:data:`KITTY` or :data:`SIXEL`)."""
    from textual_image.widget import SixelImage, TGPImage

    return (SixelImage if kind == SIXEL else TGPImage)(**kwargs)
