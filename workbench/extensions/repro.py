"""The reproducibility record: seeds, versions, config and how the model was built."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from typing import Any

import numpy
import torch

from workbench.core.capture import class_path, jsonable

__all__ = ["ReproducibilityRecord", "environment"]


def environment() -> dict[str, Any]:
    """Versions of Python, torch, CUDA, cuDNN and NumPy, and the platform."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "num_threads": torch.get_num_threads(),
    }
    info["numpy"] = numpy.__version__
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


class ReproducibilityRecord:
    """Writes ``artifacts/reproducibility.json`` when the task is set up.

    It holds the seed, the versions (:func:`environment`), the resolved config, the
    device, precision and backend, the command line, and the class and constructor
    arguments of the model (captured while ``build_model()`` ran). Without a run folder
    the record is kept in :attr:`record` only.

    Args:
        filename: The artifact's name.
    """

    def __init__(self, filename: str = "reproducibility.json") -> None:
        self.filename = filename
        self.record: dict[str, Any] = {}

    def after_setup(self, task: Any, config: Any, device: Any, precision: Any, backend: Any) -> None:
        """Collect the record and write it (main process only)."""
        if dataclasses.is_dataclass(config):
            config_dict = dataclasses.asdict(config)
        else:
            config_dict = dict(vars(config))
        self.record = {
            "task": class_path(type(task)),
            "seed": task.seed,
            "config": jsonable(config_dict),
            "device": str(device),
            "precision": precision.name,
            "backend": backend.name,
            "world_size": backend.world_size,
            "model": task.model_spec,
            "environment": environment(),
            "argv": list(sys.argv),
            "env": {k: os.environ[k] for k in ("CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS",
                                               "PYTHONHASHSEED") if k in os.environ},
            "created_at": time.time(),
        }
        if task.run_dir is not None and backend.is_main:
            path = task.artifact_path(self.filename)
            path.write_text(json.dumps(self.record, indent=2, sort_keys=True) + "\n")
