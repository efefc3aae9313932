"""``workbench export --format tensorboard``: one folder of event files per run.

Written with the ``tensorboard`` package's own record writer and protocol buffers (the
``tensorboard`` extra: ``pip install 'workbench[tensorboard]'``), without torch or
TensorFlow. Each run's folder holds one ``events.out.tfevents.*`` file with every metric
point as a scalar (its step and wall time), and the run's config as hyperparameters (the
HParams tab), so ``tensorboard --logdir FOLDER`` shows the runs side by side.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.runs.present import flatten_config

if TYPE_CHECKING:
    from workbench.store import Run

#: A run's points: ``(run_id, key, step, value, wall_time, attempt)`` rows, NaN as None.
Points = Callable[["Run"], Iterable[tuple[Any, ...]]]

__all__ = ["EVENT_FILE_PREFIX", "run_folder_names", "write_tensorboard"]

#: TensorBoard reads the files whose names contain ``tfevents``; this is the usual name.
EVENT_FILE_PREFIX = "events.out.tfevents."
_INSTALL = "--format tensorboard needs the tensorboard package: pip install 'workbench[tensorboard]'"


def _load() -> tuple[Any, Any, Any, Any]:
    """The tensorboard modules the writer needs, or one clear line."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import summary_v2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError as exc:
        raise WorkbenchError(_INSTALL) from exc
    return event_pb2, summary_pb2, summary_v2, RecordWriter


def run_folder_names(runs: Sequence[Run]) -> dict[str, str]:
    """A folder name per run id: the run's name, or its id when the name cannot be one.

    TensorBoard shows runs by folder, so a name is kinder than an id; a name that could
    clash with another run's folder, or that is not a plain file name, gives way to the id.
    """
    ids = {run.id for run in runs}
    names: dict[str, str] = {}
    taken: set[str] = set()
    for run in runs:
        name = run.name or ""
        usable = (name and name not in (".", "..") and not name.startswith(".")
                  and os.sep not in name and "/" not in name and name not in ids and name not in taken)
        folder = name if usable else run.id
        names[run.id] = folder
        taken.add(folder)
    return names


def _hparam(value: Any) -> bool | int | float | str:
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def write_tensorboard(runs: Sequence[Run], folder: Path, points: Points,
                      advance: Callable[[int], None]) -> list[Path]:
    """Write one folder of TensorBoard event files per run under ``folder``.

    An earlier export's event files in a run's folder are replaced (TensorBoard would
    read both and show every point twice).

    Args:
        runs: The runs.
        folder: The export folder (made if missing).
        points: A run's metric points (``workbench.runs.export.metric_rows``).
        advance: Called with 1 for each point written.

    Returns:
        The event files written, one per run.

    Raises:
        WorkbenchError: The tensorboard package is missing.
    """
    event_pb2, summary_pb2, hparams, RecordWriter = _load()
    written = []
    folders = run_folder_names(runs)
    host = socket.gethostname()
    for run in runs:
        run_folder = folder / folders[run.id]
        run_folder.mkdir(parents=True, exist_ok=True)
        for old in run_folder.glob(EVENT_FILE_PREFIX + "*"):
            old.unlink()
        final = run_folder / f"{EVENT_FILE_PREFIX}{int(run.created_at):010d}.{host}.{run.id}"
        tmp = run_folder / f".{final.name}.tmp"  # not read by TensorBoard until renamed
        try:
            with open(tmp, "wb") as handle:
                writer = RecordWriter(handle)
                writer.write(event_pb2.Event(wall_time=run.created_at, file_version="brain.Event:2").SerializeToString())
                config = {k: _hparam(v) for k, v in flatten_config(run.config).items()}
                session = hparams.hparams_pb(config, trial_id=run.id, start_time_secs=run.created_at)
                writer.write(event_pb2.Event(wall_time=run.created_at, step=0, summary=session).SerializeToString())
                Value, Summary, Event = summary_pb2.Summary.Value, summary_pb2.Summary, event_pb2.Event
                for _run_id, key, step, value, wall, _attempt in points(run):
                    scalar = math.nan if value is None else value
                    summary = Summary(value=[Value(tag=key, simple_value=scalar)])
                    writer.write(Event(wall_time=wall or run.created_at, step=step, summary=summary)
                                 .SerializeToString())
                    advance(1)
                writer.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(final)
    return written
