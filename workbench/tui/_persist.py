"""The view the app shows, kept per project between sessions (``.workbench/app-state.json``).

What a person set up by hand — marks, the pin, sort, filter, the metric chosen for a run,
the chart options, the overlay's page and key filter — is written here (atomically, a
moment after the last change) and read back at the next start. The file is a convenience:
a missing one means a fresh view, an unreadable one is ignored with a notice, and runs that
no longer exist are dropped on load. No textual import: the tests use it directly.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["STATE_FILE", "VIEW_FORMAT", "SavedView", "read_view", "write_atomic"]

#: The file's name in the project's state folder (``.workbench/``).
STATE_FILE = "app-state.json"
#: The layout's version; a file with another is ignored (with a notice).
VIEW_FORMAT = 1


@dataclass
class SavedView:
    """Everything of the main screen's view that outlives a session.

    Attributes:
        marked: Marked runs, in marking order.
        pinned: The pinned run, or None.
        sort: The run table's sort column.
        descending: Its direction.
        filter: The run filter's text.
        metric_choice: The key chosen with ``m`` for a run's single chart (run id → key).
        x_axis: ``"step"`` or ``"time"``.
        log_scale: A log y axis.
        smoothing: The moving average's weight; None: the settings' default.
        skip_start: The y range leaves out the start.
        overlay_page: The overlay's page.
        key_filter: The overlay's metric-key filter (``M``).
    """

    marked: list[str] = field(default_factory=list)
    pinned: str | None = None
    sort: str = "started"
    descending: bool = True
    filter: str = ""
    metric_choice: dict[str, str] = field(default_factory=dict)
    x_axis: str = "step"
    log_scale: bool = False
    smoothing: float | None = None
    skip_start: bool = False
    overlay_page: int = 0
    key_filter: str = ""

    def run_ids(self) -> set[str]:
        """Every run the view names."""
        return {*self.marked, *self.metric_choice, *([self.pinned] if self.pinned else [])}

    def keep_runs(self, existing: set[str]) -> list[str]:
        """Forget the runs not in ``existing``; returns the ids dropped."""
        dropped = sorted(self.run_ids() - existing)
        self.marked = [i for i in self.marked if i in existing]
        self.metric_choice = {k: v for k, v in self.metric_choice.items() if k in existing}
        if self.pinned not in existing:
            self.pinned = None
        return dropped

    def to_json(self) -> str:
        """The file's text (stable key order, so an unchanged view writes the same bytes)."""
        return json.dumps({"format": VIEW_FORMAT, **asdict(self)}, indent=1, sort_keys=True)

    @classmethod
    def from_data(cls, data: Any) -> SavedView:
        """Read the file's parsed JSON; a field of the wrong type keeps its default.

        Raises:
            ValueError: Not an object, or another format.
        """
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("format") != VIEW_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {VIEW_FORMAT}")
        view = cls()
        strings = lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)  # noqa: E731
        if strings(data.get("marked")):
            view.marked = list(dict.fromkeys(data["marked"]))
        if isinstance(data.get("pinned"), str):
            view.pinned = data["pinned"]
        for name in ("sort", "filter", "key_filter"):
            if isinstance(data.get(name), str):
                setattr(view, name, data[name])
        for name in ("descending", "log_scale", "skip_start"):
            if isinstance(data.get(name), bool):
                setattr(view, name, data[name])
        choice = data.get("metric_choice")
        if isinstance(choice, dict):
            view.metric_choice = {k: v for k, v in choice.items() if isinstance(k, str) and isinstance(v, str)}
        if data.get("x_axis") in ("step", "time"):
            view.x_axis = data["x_axis"]
        smoothing = data.get("smoothing")
        if isinstance(smoothing, (int, float)) and not isinstance(smoothing, bool) \
                and math.isfinite(smoothing) and 0 <= smoothing < 1:
            view.smoothing = float(smoothing)
        page = data.get("overlay_page")
        if isinstance(page, int) and not isinstance(page, bool) and page >= 0:
            view.overlay_page = page
        return view


def read_view(path: Path) -> tuple[SavedView | None, str]:
    """Read the saved view.

    Returns:
        ``(view, "")``; ``(None, "")`` when there is no file; ``(None, notice)`` when it
        cannot be read (the notice says why, in one line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"cannot read {path.name}: {exc.strerror or exc}"
    try:
        return SavedView.from_data(json.loads(text)), ""
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return None, f"{path.name} is not a saved view ({exc})"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (a reader never sees half).

    Raises:
        OSError: The folder cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
