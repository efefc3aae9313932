"""Report runs of other training libraries to the workbench, like ``workbench.init()`` does.

- :class:`workbench.integrations.lightning.WorkbenchLogger`: a Lightning ``Logger``
  (``Trainer(logger=WorkbenchLogger())``).
- :class:`workbench.integrations.huggingface.WorkbenchCallback`: a Hugging Face
  ``TrainerCallback`` (``Trainer(..., callbacks=[WorkbenchCallback()])``).

Importing this package imports neither Lightning nor transformers (nor torch): each
module imports its own library, and the names here load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["WorkbenchCallback", "WorkbenchLogger"]

_LAZY = {
    "WorkbenchLogger": "workbench.integrations.lightning",
    "WorkbenchCallback": "workbench.integrations.huggingface",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.integrations' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
