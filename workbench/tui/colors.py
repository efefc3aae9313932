"""Run colours: distinct, legible in every theme, and each run keeps its colour.

A run gets the next free *slot* the first time the app sees it, and keeps it: slots are
remembered in ``.workbench/run-colors.json`` (beside the index, outside every snapshot), so a
run has the same colour after a restart. The slot's colour comes from a palette made for the
current theme: hues spread around the CIELCh circle at one lightness chosen against the
theme's background, each kept only when its CIEDE2000 difference from the background, from
the table's cursor and from every colour kept before it is large enough (see the minimums
below; ``tests/tui/test_tui_colors.py`` measures them in every built-in theme). The table's
cursor is a tint of the theme's primary colour a fixed lightness step from the background,
so the run colours and the status colours stay readable on the highlighted row.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from textual.color import Color, Lab, rgb_to_lab

__all__ = [
    "MIN_BETWEEN",
    "MIN_FROM_BACKGROUND",
    "MIN_FROM_CURSOR",
    "RunColors",
    "ciede2000",
    "cursor_colors",
    "legible",
    "palette",
    "theme_color",
]

#: Least CIEDE2000 difference between a run colour and the theme's background.
MIN_FROM_BACKGROUND = 35.0
#: Least CIEDE2000 difference between a run colour and the table's cursor (focused or not).
MIN_FROM_CURSOR = 25.0
#: Least CIEDE2000 difference between two run colours of one palette.
MIN_BETWEEN = 12.0

#: Hues (CIELCh degrees), most distinct first: blue, orange, green, magenta, yellow, cyan, ...
_HUES = (260, 50, 140, 340, 90, 200, 15, 300, 115, 230, 70, 170, 30, 320)
_CHROMA = 52.0
_CURSOR_STEP = 20.0  # lightness of the focused cursor above (dark themes) or below the background
_FALLBACK_DARK = "#121212"
_FALLBACK_LIGHT = "#F0F0F0"


def theme_color(variables: dict[str, str], name: str) -> str:
    """A theme colour (``success``, ``error``, ...) as ``#rrggbb`` for Rich styles."""
    try:
        return Color.parse(variables[name]).hex6
    except Exception:
        return {"success": "#4EBF71", "error": "#ba3c5b", "warning": "#ffa62b"}.get(name, "#888888")


# -- colour science --------------------------------------------------------------------------


def ciede2000(first: Color, second: Color) -> float:
    """The CIEDE2000 colour difference of two colours (about 2.3: just noticeable)."""
    return _ciede2000_lab(rgb_to_lab(first), rgb_to_lab(second))


def _ciede2000_lab(lab1: Lab, lab2: Lab) -> float:
    """CIEDE2000 (Sharma, Wu and Dalal, 2005) of two CIELAB colours, kL = kC = kH = 1."""
    l1, a1, b1 = lab1
    l2, a2, b2 = lab2
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dl = l2 - l1
    dc = c2p - c1p
    if c1p * c2p == 0:
        dh = 0.0
    else:
        dh = h2p - h1p
        if dh > 180:
            dh -= 360
        elif dh < -180:
            dh += 360
    dh_big = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    l_bar = (l1 + l2) / 2
    cp_bar = (c1p + c2p) / 2
    if c1p * c2p == 0:
        h_bar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        h_bar = (h1p + h2p) / 2
    elif h1p + h2p < 360:
        h_bar = (h1p + h2p + 360) / 2
    else:
        h_bar = (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(h_bar - 30)) + 0.24 * math.cos(math.radians(2 * h_bar))
         + 0.32 * math.cos(math.radians(3 * h_bar + 6)) - 0.20 * math.cos(math.radians(4 * h_bar - 63)))
    d_theta = 30 * math.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * math.sqrt(cp_bar**7 / (cp_bar**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / math.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * cp_bar
    s_h = 1 + 0.015 * cp_bar * t
    r_t = -math.sin(math.radians(2 * d_theta)) * r_c
    return math.sqrt((dl / s_l) ** 2 + (dc / s_c) ** 2 + (dh_big / s_h) ** 2 + r_t * (dc / s_c) * (dh_big / s_h))


def _lab_to_linear(lab: Lab) -> tuple[float, float, float]:
    y = (lab.L + 16) / 116
    x = lab.a / 500 + y
    z = y - lab.b / 200

    def f(t: float) -> float:
        return t**3 if t > 0.2068930344 else (t - 16 / 116) / 7.787

    x, y, z = 0.95047 * f(x), f(y), 1.08883 * f(z)
    return (x * 3.2406 - y * 1.5372 - z * 0.4986, -x * 0.9689 + y * 1.8758 + z * 0.0415,
            x * 0.0557 - y * 0.2040 + z * 1.0570)


def _lch(lightness: float, chroma: float, hue: float) -> Color:
    """The sRGB colour nearest ``L, C, h``: chroma is lowered until the colour fits sRGB."""
    while True:
        lab = Lab(lightness, chroma * math.cos(math.radians(hue)), chroma * math.sin(math.radians(hue)))
        linear = _lab_to_linear(lab)
        if all(-0.001 <= c <= 1.001 for c in linear) or chroma <= 0:
            break
        chroma -= 2
    channels = []
    for c in linear:
        c = min(1.0, max(0.0, c))
        c = 1.055 * c ** (1 / 2.4) - 0.055 if c > 0.0031308 else 12.92 * c
        channels.append(round(c * 255))
    return Color(*channels)


def _parse(text: str | None, fallback: str) -> Color:
    try:
        colour = Color.parse(text or fallback)
    except Exception:
        return Color.parse(fallback)
    if colour.ansi is not None or colour.a < 1:  # a terminal's own colour: unknown here
        return Color.parse(fallback)
    return colour


def _background(variables: dict[str, str], dark: bool | None) -> tuple[Color, bool]:
    text = variables.get("background")
    if dark is None:
        colour = _parse(text, _FALLBACK_DARK)
        return colour, rgb_to_lab(colour).L < 50
    return _parse(text, _FALLBACK_DARK if dark else _FALLBACK_LIGHT), dark


def cursor_colors(variables: dict[str, str], dark: bool | None = None) -> tuple[Color, Color]:
    """The run table's cursor backgrounds, focused and not: the primary's hue, a step lighter
    than the background in a dark theme (darker in a light one), with little chroma."""
    background, dark = _background(variables, dark)
    base = rgb_to_lab(background)
    primary = rgb_to_lab(_parse(variables.get("primary"), "#0178D4"))
    hue = math.degrees(math.atan2(primary.b, primary.a)) % 360
    chroma = min(28.0, math.hypot(primary.a, primary.b))
    sign = 1 if dark else -1
    return (_lch(base.L + sign * _CURSOR_STEP, chroma, hue),
            _lch(base.L + sign * _CURSOR_STEP / 2, chroma * 0.6, hue))


def palette(variables: dict[str, str], dark: bool | None = None) -> list[Color]:
    """Distinct run colours for a theme (``App.theme_variables``), legible on its background
    and on the run table's cursor."""
    background, dark = _background(variables, dark)
    base = rgb_to_lab(background).L
    lightness = min(82.0, max(68.0, base + 55)) if dark else max(36.0, min(48.0, base - 45))
    avoid = [background, *cursor_colors(variables, dark)]
    colours: list[Color] = []
    for step in (0.0, 10.0 if dark else -8.0):
        for hue in _HUES:
            colour = _lch(lightness - step, _CHROMA, hue)
            if ciede2000(colour, avoid[0]) < MIN_FROM_BACKGROUND:
                continue
            if min(ciede2000(colour, c) for c in avoid[1:]) < MIN_FROM_CURSOR:
                continue
            if any(ciede2000(colour, c) < MIN_BETWEEN for c in colours):
                continue
            colours.append(colour)
    return colours


def legible(colour: Color, background: Color) -> bool:
    """Whether text in ``colour`` reads on ``background`` (CIEDE2000 at least 20)."""
    return ciede2000(colour, background) >= 20.0


# -- slots -----------------------------------------------------------------------------------


class RunColors:
    """Hands out colour slots to runs, first come first served, and never takes one back.

    Args:
        path: Where slots are remembered between sessions (``.workbench/run-colors.json``);
            None keeps them in memory only.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._slots: dict[str, int] = {}
        self._next = 0
        self._dirty = False
        self._palette: list[Color] = palette({}, dark=True)
        self._cursor = cursor_colors({}, dark=True)
        self._foreground = Color.parse("#E0E0E0")
        self._background = _background({}, True)[0]
        self._legible: dict[tuple[str, str], bool] = {}
        if path is not None:
            self._load(path)

    def set_theme(self, variables: dict[str, str], dark: bool | None = None) -> None:
        """Use colours made for the current theme."""
        self._palette = palette(variables, dark) or self._palette
        self._cursor = cursor_colors(variables, dark)
        self._background, dark = _background(variables, dark)
        self._foreground = _parse(variables.get("foreground"), "#E0E0E0" if dark else "#1F1F1F")
        self._legible.clear()

    @property
    def colours(self) -> list[Color]:
        """The palette in use."""
        return list(self._palette)

    def cursor(self, focused: bool = True) -> Color:
        """The run table's cursor background (focused, or not)."""
        return self._cursor[0 if focused else 1]

    @property
    def foreground(self) -> Color:
        """The theme's text colour (what replaces a colour that would not read on the cursor)."""
        return self._foreground

    @property
    def background(self) -> tuple[int, int, int]:
        """The theme's background as an RGB tuple (what a faint curve is mixed into)."""
        colour = self._background
        return (colour.r, colour.g, colour.b)

    def legible(self, colour: str, background: Color) -> bool:
        """Whether text in ``colour`` (``#rrggbb``) reads on ``background`` (cached)."""
        key = (colour, background.hex6)
        found = self._legible.get(key)
        if found is None:
            found = self._legible[key] = legible(Color.parse(colour), background)
        return found

    def slot(self, run_id: str) -> int:
        """The run's slot (assigned on first call)."""
        slot = self._slots.get(run_id)
        if slot is None:
            slot = self._slots[run_id] = self._next
            self._next += 1
            self._dirty = True
        return slot

    def color(self, run_id: str) -> Color:
        """The run's colour."""
        return self._palette[self.slot(run_id) % len(self._palette)]

    def hex(self, run_id: str) -> str:
        """The run's colour as ``#rrggbb``."""
        return self.color(run_id).hex6

    def rgb(self, run_id: str) -> tuple[int, int, int]:
        """The run's colour as an RGB tuple."""
        colour = self.color(run_id)
        return (colour.r, colour.g, colour.b)

    # -- remembering ---------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            slots = {str(k): int(v) for k, v in data.get("slots", {}).items()}
            self._next = max(int(data.get("next", 0)), max(slots.values(), default=-1) + 1)
        except (OSError, ValueError, TypeError, AttributeError):
            return  # none yet, or unreadable: start afresh (colours are a convenience)
        self._slots = slots

    def save(self, keep: set[str] | None = None) -> None:
        """Write the slots (atomically) if they changed; ``keep``: forget runs not in it."""
        if self.path is None:
            return
        if keep is not None and set(self._slots) - keep:
            self._slots = {k: v for k, v in self._slots.items() if k in keep}
            self._dirty = True
        if not self._dirty:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"format": 1, "next": self._next, "slots": self._slots}), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            return  # a read-only project: colours last for this session only
        self._dirty = False
