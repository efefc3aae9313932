"""The training core: tasks, their meta-algorithms, stages and fixtures (imports torch).

Only run processes import this package; the workbench process never does.
"""

from __future__ import annotations

from workbench.core.backends import Backend, DDPBackend, SingleBackend, make_backend
from workbench.core.data import DataModule, EpochSampler, Loaders, Preprocessed
from workbench.core.devices import DeviceError, Precision, available_devices, resolve_device
from workbench.core.stages import DEFAULT_STAGES, ExtensionError, FixtureError, Hooks, StageSpec, StageTree
from workbench.core.errors import TaskError
from workbench.core.state import TrainState, seed_everything
from workbench.core.task import MetricSink, Task

__all__ = [
    "DEFAULT_STAGES",
    "Backend",
    "DDPBackend",
    "DataModule",
    "DeviceError",
    "EpochSampler",
    "ExtensionError",
    "FixtureError",
    "Hooks",
    "Loaders",
    "MetricSink",
    "Precision",
    "Preprocessed",
    "SingleBackend",
    "StageSpec",
    "StageTree",
    "Task",
    "TaskError",
    "TrainState",
    "available_devices",
    "make_backend",
    "resolve_device",
    "seed_everything",
]
