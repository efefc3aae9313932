"""How a supervisor ends an attempt and samples its processes: shared by the task
supervisor (``workbench.runs.supervisor``) and the script supervisor
(``workbench.runs.script_supervisor``).

The outcome file is written first (durable), then the index mirrors it (DESIGN.md, "Who
owns a run").
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from workbench.runs.outcome import Outcome, write_outcome
from workbench.runs.sampler import SystemSampler
from workbench.store import RunIndex, RunStatus

__all__ = ["end_attempt", "finish", "record_sample", "rotate_log", "sampler_for", "signal_name", "stopped",
           "write_outcome_of"]


def sampler_for(pid: int) -> SystemSampler | None:
    """The run's system-metrics sampler (None when it cannot sample here)."""
    try:
        return SystemSampler(pid, every=float(os.environ.get("WORKBENCH_SYS_EVERY", "5")))
    except Exception:  # noqa: BLE001 - system metrics are a convenience, never a failure
        return None


def record_sample(index: RunIndex, run_id: str, attempt: int, sampler: SystemSampler) -> None:
    """Record one sample of the run's system metrics (skipped when the index is busy)."""
    try:
        index.add_metrics(run_id, sampler.sample(), attempt=attempt)
    except Exception:  # noqa: BLE001 - a busy index or a vanished process: skip this sample
        pass


def rotate_log(path: Path, max_bytes: int) -> bool:
    """Copy-truncate ``path`` once it is larger than ``max_bytes``: its content goes to
    ``<name>.1`` (replacing the older one) and the file is emptied in place.

    The training processes write through an inherited append-mode handle, so the file
    cannot be renamed under them; with ``O_APPEND`` their next write lands at the new end.
    A reader that tails by offset sees the file shrink and starts over (the app and
    ``workbench logs --follow`` do). Output written between the copy and the truncate can
    be lost: a few lines at most, once per rotation.

    Returns:
        Whether it rotated.
    """
    try:
        if path.stat().st_size <= max_bytes:
            return False
        import shutil

        older = path.with_name(path.name + ".1")
        tmp = path.with_name(path.name + ".1.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, older)
        with path.open("r+b") as fh:
            fh.truncate(0)
        return True
    except OSError:
        return False


def write_outcome_of(index: RunIndex, run_id: str, run_dir: Path, attempt: int) -> None:
    """Mirror the attempt's final row into ``attempts/<n>/outcome.json``."""
    run = index.get_run(run_id)
    if run is None or run.attempt != attempt or not run.status.is_final:
        return
    write_outcome(run_dir, Outcome(attempt, run.status, run.ended_at or time.time(), run.exit_code,
                                   run.signal, run.error or "", run.step, run.started_at))


def finish(index: RunIndex, run_id: str, status: RunStatus, code: int | None, sig: int | None,
            error: str, tb: str) -> None:
    """End the attempt with ``status``, its exit code or signal, error and traceback."""
    fields: dict[str, Any] = {"exit_code": code, "signal": sig}
    if error:
        fields["error"] = error
    if tb:
        fields["traceback"] = tb
    end_attempt(index, run_id, status, error, fields)


def stopped(index: RunIndex, run_id: str, code: int | None, sig: int | None, message: str) -> None:
    """End the attempt ``stopped`` (a stop request was delivered): ``pruned`` when the request's
    reason is ``pruned`` (a sweep's trial stopped for being poor; never resumed)."""
    run = index.get_run(run_id)
    status = RunStatus.PRUNED if run is not None and run.stop_reason == "pruned" else RunStatus.STOPPED
    end_attempt(index, run_id, status, message, {"exit_code": code, "signal": sig})


def end_attempt(index: RunIndex, run_id: str, status: RunStatus, message: str, fields: dict[str, Any]) -> None:
    """Conclude the attempt: its outcome file first (durable), then the index mirrors it."""
    ended = time.time()
    run = index.get_run(run_id)
    if run is not None and run.run_dir:
        try:
            write_outcome(Path(run.run_dir), Outcome(run.attempt, status, ended, fields.get("exit_code"),
                                                     fields.get("signal"), fields.get("error") or message,
                                                     run.step, run.started_at))
        except OSError:
            pass  # the index still says how it ended
    index.update_run(run_id, status=status, ended_at=ended, **fields)
    index.add_event(run_id, status.value, message)


def signal_name(sig: int) -> str:
    """``SIGINT`` for 2; ``signal 99`` for a number no signal has."""
    return signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
