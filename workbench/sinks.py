"""Simple metric sinks for ``Task.log``: in memory, and a JSON-lines file.

Inside a workbench run the sink is the run index's ``MetricWriter``; these serve a task
run on its own (``python tasks/x.py fit``) and tests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO

__all__ = ["JsonlSink", "MemorySink"]


class MemorySink:
    """Keeps every point in memory: ``points[key] == [(step, value), ...]``."""

    def __init__(self) -> None:
        self.points: dict[str, list[tuple[int, float]]] = {}
        self.artifacts: list[dict] = []  # rows recorded by Task.log_image
        self._where: dict[str, dict[int, int]] = {}  # key -> step -> index in points[key]

    def log(self, key: str, value: float, step: int) -> None:
        """Record a point (a step logged twice keeps the newest value, in its place)."""
        series = self.points.setdefault(key, [])
        where = self._where.setdefault(key, {})
        index = where.get(step)
        if index is None:
            where[step] = len(series)
            series.append((step, value))
        else:
            series[index] = (step, value)

    def add_artifacts(self, rows: list[dict]) -> None:
        """Keep artifact rows (a logged image's path, size, kind) in :attr:`artifacts`."""
        self.artifacts.extend(dict(row) for row in rows)

    def series(self, key: str) -> list[tuple[int, float]]:
        """The points of one key."""
        return list(self.points.get(key, ()))

    def flush(self) -> None:
        """Nothing to do."""

    def close(self) -> None:
        """Nothing to do."""


class JsonlSink:
    """Appends one JSON object per point to a file: ``{"key", "value", "step", "time"}``.

    Args:
        path: The file; its folder is made.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")

    def log(self, key: str, value: float, step: int) -> None:
        """Append a point (buffered; see :meth:`flush`)."""
        if self._file is not None:
            self._file.write(json.dumps({"key": key, "value": value, "step": step,
                                         "time": round(time.time(), 3)}) + "\n")

    def flush(self) -> None:
        """Write buffered points to the file."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
