"""Built-in extensions: attached to a task from outside, the loop knows none of them.

An extension is any object with ``before_<stage>``/``after_<stage>`` methods whose
parameter names pick fixtures (see ``docs/tasks.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.checkpoint_names import checkpoint_folder
from workbench.extensions.checkpoint import Checkpoint, EventCallback
from workbench.extensions.gradients import GradientStats
from workbench.extensions.guards import EarlyStopping, NanGuard, NonFiniteLossError
from workbench.extensions.leakage import BatchLeakageCheck, BatchLeakageError
from workbench.extensions.metrics import MetricLogger
from workbench.extensions.progress import ConsoleReporter, Progress, ProgressInfo, Reporter
from workbench.extensions.repro import ReproducibilityRecord

if TYPE_CHECKING:
    from workbench.core.backends import Backend
    from workbench.core.task import MetricSink, Task

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
    "assemble_task",
    "default_extensions",
]


def default_extensions(reporter: Reporter | None = None) -> list[object]:
    """The extensions every run gets: metric logging, NaN guard, progress, reproducibility record.

    Args:
        reporter: Where progress goes (a :class:`ConsoleReporter`, the run index, or None).
    """
    return [MetricLogger(), NanGuard(), Progress(reporter), ReproducibilityRecord()]


def assemble_task(
    task_cls: type[Task],
    config: Any,
    *,
    run_dir: str | Path,
    sink: MetricSink | None,
    reporter: Reporter | None = None,
    device: str = "auto",
    precision: str = "32",
    backend: Backend | str | None = None,
    checkpoints: bool = False,
    on_event: EventCallback | None = None,
) -> Task:
    """Build a task and attach what a run gets: one recipe for every way a task runs.

    The default extensions (:func:`default_extensions`) come first, then the task's own
    (``Task.extensions()``). A workbench run (``workbench.runs.train``) and a task file run
    on its own (``python tasks/x.py fit``) both assemble their task here.

    Args:
        task_cls: The task class.
        config: Its config: an instance, a mapping of its fields, or None for the defaults.
        run_dir: The run's folder (artifacts, checkpoints).
        sink: Where the task's metrics go (None: kept in ``task.metrics`` only).
        reporter: Where progress goes (a console bar, the run index, or None).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``32``, ``bf16-mixed`` or ``16-mixed``.
        backend: A backend, or ``single``/``ddp`` (None: single).
        checkpoints: Save checkpoints to ``run_dir/checkpoints`` (with the default
            :class:`Checkpoint` schedule) unless the task brings its own ``Checkpoint``.
        on_event: Given to every ``Checkpoint`` attached, to hear of saves and skipped files.

    Returns:
        The task, with its extensions attached; nothing is built until it runs.
    """
    task = task_cls(config, device=device, precision=precision, backend=backend, run_dir=run_dir, sink=sink)
    extras = list(task.extensions())
    saving = [e for e in extras if isinstance(e, Checkpoint)]
    if checkpoints and not saving:
        saving = [Checkpoint(checkpoint_folder(run_dir))]
        extras.extend(saving)
    if on_event is not None:
        for ext in saving:
            ext.on_event = on_event
    for ext in default_extensions(reporter) + extras:
        task.attach(ext)
    return task
