"""The app's settings, per project, in ``.workbench/app.toml`` (outside every code snapshot).

``theme``, ``chart_keys`` (the keys charts show first), ``smoothing`` (the charts' starting
moving-average weight) and ``refresh_interval`` (seconds between reads of the index). Read
at start: a bad value gives one notice that names the key and what would be right, and its
default is used. The palette's "Settings: …" commands change them and write the file back
(tomli_w). The state folder is never snapshotted, so a settings change never marks a run's
code as changed. No textual import.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.tui._persist import write_atomic

__all__ = ["REFRESH_CHOICES", "SETTINGS_FILE", "SMOOTHING_CHOICES", "AppSettings", "read_settings",
           "write_settings"]

#: The file's name in the project's state folder (``.workbench/``).
SETTINGS_FILE = "app.toml"
#: What the palette offers for smoothing and the refresh interval (the file takes any valid value).
SMOOTHING_CHOICES = (0.0, 0.6, 0.9, 0.99)
REFRESH_CHOICES = (0.25, 0.5, 1.0, 2.0, 5.0)
_REFRESH_RANGE = (0.1, 60.0)


@dataclass
class AppSettings:
    """The settings, with their defaults.

    Attributes:
        theme: A Textual theme's name (None: Textual's default).
        chart_keys: Metric keys (or globs) the charts show first, in this order.
        smoothing: The charts' starting moving-average weight, 0 (none) to below 1.
        refresh_interval: Seconds between reads of the run index.
    """

    theme: str | None = None
    chart_keys: list[str] = field(default_factory=list)
    smoothing: float = 0.0
    refresh_interval: float = 0.5

    def to_toml(self) -> dict[str, Any]:
        """The file's table (a theme left at Textual's default is not written)."""
        out: dict[str, Any] = {}
        if self.theme:
            out["theme"] = self.theme
        out["chart_keys"] = list(self.chart_keys)
        out["smoothing"] = self.smoothing
        out["refresh_interval"] = self.refresh_interval
        return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def read_settings(path: Path, themes: Collection[str] = ()) -> tuple[AppSettings, list[str]]:
    """Read ``app.toml``; a missing file gives the defaults.

    Args:
        path: The file.
        themes: The theme names that exist (empty: any name is taken).

    Returns:
        The settings, and one line per problem (``smoothing = 2: expected … (using 0)``).
    """
    from workbench.project._toml import tomllib

    settings = AppSettings()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return settings, []
    except OSError as exc:
        return settings, [f"cannot read it: {exc.strerror or exc} (using the defaults)"]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return settings, [f"not valid TOML: {exc} (using the defaults)"]
    problems: list[str] = []
    for key, value in data.items():
        if key == "theme":
            if isinstance(value, str) and (not themes or value in themes):
                settings.theme = value
            else:
                known = ", ".join(sorted(themes)[:8]) + (", …" if len(themes) > 8 else "")
                problems.append(f"theme = {value!r}: expected a theme's name ({known}); using the default")
        elif key == "chart_keys":
            if isinstance(value, list) and all(isinstance(k, str) and k.strip() for k in value):
                settings.chart_keys = [k.strip() for k in value]
            else:
                problems.append(f"chart_keys = {value!r}: expected a list of metric keys or globs, "
                                'e.g. ["val/loss", "train/*"]; using none')
        elif key == "smoothing":
            number = _number(value)
            if number is not None and 0 <= number < 1:
                settings.smoothing = number
            else:
                problems.append(f"smoothing = {value!r}: expected a number from 0 (none) to below 1, "
                                "e.g. 0.9; using 0")
        elif key == "refresh_interval":
            number = _number(value)
            low, high = _REFRESH_RANGE
            if number is not None and low <= number <= high:
                settings.refresh_interval = number
            else:
                problems.append(f"refresh_interval = {value!r}: expected seconds from {low:g} to {high:g}, "
                                "e.g. 0.5; using 0.5")
        else:
            problems.append(f"unknown key {key!r}: the keys are theme, chart_keys, smoothing, refresh_interval")
    return settings, problems


def write_settings(path: Path, settings: AppSettings) -> None:
    """Write ``app.toml`` (atomically; comments in the file are not kept).

    Raises:
        OSError: The folder cannot be written.
    """
    import tomli_w

    header = "# Workbench app settings (docs/tui.md#settings); the app rewrites this file.\n"
    write_atomic(path, header + tomli_w.dumps(settings.to_toml()))
