"""Where a run's checkpoints lie and what their files are called: the one place that says so.

The training process writes them (:mod:`workbench.extensions.checkpoint`); the workbench
process lists them to resume or fork a run and to show them. This module imports neither
torch nor anything else above the standard library, so both may use it.

``<run>/checkpoints/`` holds ``step-<step, 9 digits>.pt`` (the newest few),
``best.pt`` (the best validation value, when one is watched) and, in a fork,
``fork-start.pt`` (the parent's checkpoint it starts from). A save in progress is a
hidden temporary file beside its target (``.step-000000120-<random>.tmp``).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "BEST_FILE",
    "FOLDER",
    "FORK_START_FILE",
    "TEMP_SUFFIX",
    "best_file",
    "checkpoint_folder",
    "is_partial",
    "step_file",
    "step_files",
    "step_of",
    "temp_prefix",
]

#: The run folder's subfolder that holds its checkpoints.
FOLDER = "checkpoints"
#: The checkpoint with the best value of the watched validation metric.
BEST_FILE = "best.pt"
#: In a fork: a copy of the parent's checkpoint the fork starts from.
FORK_START_FILE = "fork-start.pt"
#: The suffix of a save's temporary file (see :func:`temp_prefix`).
TEMP_SUFFIX = ".tmp"

_STEP = re.compile(r"^step-(\d+)\.pt$")
_PARTIAL = re.compile(r"^\.(step-\d+|best)-.*\.tmp$")


def checkpoint_folder(run_dir: str | Path) -> Path:
    """The run's checkpoint folder: ``<run_dir>/checkpoints``."""
    return Path(run_dir) / FOLDER


def best_file(folder: str | Path) -> Path:
    """The path of ``best.pt`` in a checkpoint folder (whether or not it exists)."""
    return Path(folder) / BEST_FILE


def step_file(step: int) -> str:
    """The file name of the checkpoint at ``step``: ``step-000000120.pt``."""
    return f"step-{step:09d}.pt"


def step_of(name: str) -> int | None:
    """The step a checkpoint file name (``step-000000120.pt``) holds; None for any other name."""
    match = _STEP.match(name)
    return int(match.group(1)) if match else None


def step_files(folder: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the step checkpoints in ``folder``, newest first.

    Whether each one loads is for the reader to find out. A missing folder has none.
    """
    folder = Path(folder)
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            step = step_of(path.name)
            if step is not None and path.is_file():
                found.append((step, path))
    return sorted(found, reverse=True)


def temp_prefix(target: str | Path) -> str:
    """The prefix of a save's temporary file beside ``target`` (``.step-000000120-``)."""
    return f".{Path(target).stem}-"


def is_partial(name: str) -> bool:
    """Whether ``name`` is the temporary file of a checkpoint save that never completed."""
    return _PARTIAL.match(name) is not None
