"""Built-in extensions: attached to a task from outside, the loop knows none of them.

An extension is any object with ``before_<stage>``/``after_<stage>`` methods whose
parameter names pick fixtures (see ``docs/tasks.md``).
"""

from __future__ import annotations

from typing import Any

from workbench.extensions.checkpoint import Checkpoint
from workbench.extensions.gradients import GradientStats
from workbench.extensions.guards import EarlyStopping, NanGuard, NonFiniteLossError
from workbench.extensions.leakage import BatchLeakageCheck, BatchLeakageError
from workbench.extensions.metrics import MetricLogger
from workbench.extensions.progress import ConsoleReporter, Progress, ProgressInfo, Reporter
from workbench.extensions.repro import ReproducibilityRecord

__all__ = [
    "BatchLeakageCheck",
    "BatchLeakageError",
    "Checkpoint",
    "ConsoleReporter",
    "EarlyStopping",
    "GradientStats",
    "MetricLogger",
    "NanGuard",
    "NonFiniteLossError",
    "Progress",
    "ProgressInfo",
    "Reporter",
    "ReproducibilityRecord",
    "default_extensions",
]


def default_extensions(reporter: Any = None) -> list[object]:
    """The extensions every run gets: metric logging, NaN guard, progress, reproducibility record.

    Args:
        reporter: Where progress goes (a :class:`ConsoleReporter`, the run index, or None).
    """
    return [MetricLogger(), NanGuard(), Progress(reporter), ReproducibilityRecord()]
