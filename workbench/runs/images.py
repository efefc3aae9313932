"""A run's logged images (``Task.log_image``), read from the index's ``artifacts`` rows.

Each image is a row of kind ``image`` whose path (``images/<key>/step-000000120.png``, relative
to the run's ``artifacts/``) holds its key and step (:mod:`workbench.image_names`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from workbench.image_names import parse_image_path
from workbench.store import RunIndex

__all__ = ["LoggedImage", "image_entries", "images"]


class LoggedImage(NamedTuple):
    """One logged image: its key, its step and its file."""

    key: str
    step: int
    path: Path


def image_entries(rows: Iterable[Mapping[str, Any]], run_dir: str | Path | None) -> list[LoggedImage]:
    """The logged images among artifact rows, sorted by key then step.

    Args:
        rows: Rows as :meth:`RunIndex.artifacts <workbench.store.RunIndex.artifacts>` gives them.
        run_dir: The run's folder (paths are made absolute under its ``artifacts/``); None
            leaves them relative to ``artifacts/``.
    """
    base = Path(run_dir) / "artifacts" if run_dir else Path()
    found = []
    for row in rows:
        if (row.get("kind") or "image") != "image":
            continue
        parsed = parse_image_path(str(row["path"]))
        if parsed is not None:
            found.append(LoggedImage(parsed[0], parsed[1], base / str(row["path"])))
    return sorted(found)


def images(index: RunIndex, run_id: str) -> list[LoggedImage]:
    """A run's logged images as ``(key, step, path)``, sorted by key then step.

    Args:
        index: The run index.
        run_id: The run.

    Returns:
        The images the index has recorded (the files are under the run's ``artifacts/``).
    """
    run = index.get_run(run_id)
    return image_entries(index.artifacts(run_id), run.run_dir if run is not None else None)
