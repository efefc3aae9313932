"""Workbench: a terminal-first experiment workbench for PyTorch.

``import workbench`` stays light (no torch, no textual): the names of the training core
(``workbench.Task``, ``workbench.DataModule``) are loaded on first use, so the CLI and the
TUI can import the package without paying for torch. ``workbench.Range`` (a config field's
allowed values) and ``workbench.init`` (a plain script reporting as a run) load no torch at all.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataModule", "Range", "Task", "TrainState", "__version__", "init"]

__version__ = "0.1.0"

_LAZY = {
    "Task": "workbench.core.task",
    "TrainState": "workbench.core.task",
    "DataModule": "workbench.core.data",
    "Range": "workbench.project.ranges",  # torch-free: a Config's Annotated[int, Range(1, None)]
    "init": "workbench.attach",  # torch-free: track a plain script as a run
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
