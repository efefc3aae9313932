"""Resuming a cluster run: a new attempt is a new Slurm job (``workbench resume RUN``).

``workbench.runs.resume.resume_run`` makes the checks every run gets (not live, resumable,
a checkpoint to resume from) and hands a run whose folder holds ``cluster.json`` to
:func:`resume_cluster`. The new job is submitted *before* the row changes: an ``sbatch``
that refuses leaves the run as it was. The row then becomes attempt ``n + 1``, ``queued``,
and a new watcher follows the job; the trainer on the node loads the latest checkpoint as
a local resume does (the attempt number comes from its ``context.json``).

A cluster sweep's ``sweep resume`` continues its trials as one new job array instead
(``workbench.runs.cluster_array.resume_array``), through :func:`mark_resumed` and, for a
trial whose job was cancelled before it started, :func:`mark_restarted`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.runs.cluster_launch import last_job, record_submission, write_attempt
from workbench.runs.launch import start_supervisor
from workbench.runs.slurm import JobState, job_state, submit
from workbench.store import Run, RunIndex, RunStatus

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.runs.spec import RunSpec

__all__ = ["NOT_STARTED", "live_job", "mark_restarted", "mark_resumed", "refuse_if_job_live", "refuse_if_live",
           "resume_cluster", "set_aside_outcome"]


def live_job(run_dir: str | Path | None) -> tuple[str, JobState] | None:
    """The newest Slurm job of the cluster run in ``run_dir`` while it has not ended.

    Returns:
        ``(job_id, state)``, or None: not a cluster run, no job, or the job has ended (or
        the controller has forgotten it).

    Raises:
        WorkbenchError: Slurm cannot be asked (one line).
    """
    from workbench.runs.cluster_launch import is_cluster_run

    if not is_cluster_run(run_dir):
        return None
    job = last_job(Path(str(run_dir)))
    if job is None:
        return None
    state = job_state(job)
    return (job, state) if state is not None and state.active else None


def refuse_if_job_live(run: Run, doing: str) -> None:
    """Refuse (one line) to ``doing`` a cluster run whose Slurm job still exists: its folder
    is where that job writes, whatever the state of its watcher on this machine (a dead
    watcher does not stop the job). A run that has ended is not refused when Slurm cannot
    be asked (an old run, looked at from a machine without Slurm).

    Raises:
        WorkbenchError: The job has not ended, or the run is live and Slurm cannot be asked.
    """
    try:
        found = live_job(run.run_dir)
    except WorkbenchError as exc:
        if run.status.is_final:
            return
        raise WorkbenchError(f"cannot {doing} run {run.id}: cannot tell whether its slurm job still runs ({exc})") \
            from None
    if found is not None:
        job, state = found
        raise WorkbenchError(f"cannot {doing} run {run.id}: its slurm job {job} is still {state.describe()}; "
                             f"stop it first (workbench stop {run.id})")


def refuse_if_live(run: Run) -> None:
    """Refuse (one line) a new job for ``run`` while its newest job has not ended.

    Raises:
        WorkbenchError: The job still exists; or Slurm cannot be asked.
    """
    found = live_job(run.run_dir)
    if found is not None:
        previous, state = found
        raise WorkbenchError(f"run {run.id}'s slurm job {previous} is still {state.describe()}; "
                             f"stop it first (workbench stop {run.id})")


def _adopt_if_requeued(index: RunIndex, run: Run) -> None:
    """An ended attempt whose job Slurm requeued (its watcher died before following the
    requeue): adopt it rather than submit a second job.

    Raises:
        WorkbenchError: Always when so (one line: a watcher now follows the requeued job).
    """
    from workbench.runs.cluster_adopt import adopt
    from workbench.runs.cluster_requeue import base_attempt

    found = live_job(run.run_dir)
    if found is None:
        return
    job, state = found
    attempt = run.attempt or 1
    if state.restarts <= attempt - base_attempt(Path(run.run_dir or ""), job):
        return  # not requeued (yet): refused as any job that has not ended
    adopt(index, run)  # None when a watcher (one that reconcile just started) holds it already
    raise WorkbenchError(f"run {run.id} resumes by itself: slurm job {job} was requeued by Slurm "
                         f"({state.describe()}) and a watcher now follows it as attempt {attempt + 1}; "
                         "see workbench ls")


def mark_resumed(project: Project, index: RunIndex, run: Run, status: RunStatus, attempt: int, job: str,
                 cluster: str, *, start: bool = True, note: str = "") -> Run:
    """Slurm accepted attempt ``attempt`` of ``run`` (after ``status``) as job ``job``: the row
    becomes that attempt, ``queued``; the job is recorded and a watcher follows it."""
    spec_device = run.device
    index.update_run(run.id, status=RunStatus.QUEUED, attempt=attempt, ended_at=None, exit_code=None,
                     signal=None, error=None, traceback=None, heartbeat_at=time.time(), stop_requested_at=None,
                     stop_mode=None, stop_reason=None)
    record_submission(index, run, attempt, job, cluster, note)
    index.add_event(run.id, "resumed", f"attempt {attempt} (after {status}) as slurm job {job}",
                    {"attempt": attempt, "previous_status": status.value, "device": spec_device, "job_id": job})
    run = index.get_run(run.id) or run
    if start:
        start_supervisor(project, index, run)
    return index.get_run(run.id) or run


def resume_cluster(project: Project, index: RunIndex, run: Run, spec: RunSpec, status: RunStatus, *,
                   device: str | None = None, start: bool = True) -> Run:
    """Submit attempt ``n + 1`` of cluster run ``run`` and start its watcher.

    Raises:
        WorkbenchError: The last job still exists and has not ended, ``--device`` was
            given, or sbatch refused (one line; the run is unchanged).
    """
    if device is not None and device != spec.device:
        raise WorkbenchError(f"run {run.id} runs on a cluster: its device cannot change on resume "
                             f"(fork it with --on to place it anew)")
    _adopt_if_requeued(index, run)
    refuse_if_live(run)
    attempt = (run.attempt or 1) + 1
    script, options, cluster = write_attempt(project, index, run, spec, attempt)
    job = submit(str(script), options, cwd=spec.project_root)
    return mark_resumed(project, index, run, status, attempt, job, cluster, start=start)


#: Where the outcome of a job cancelled before it started is kept when the run is submitted again.
NOT_STARTED = "outcome-not-started.json"


def set_aside_outcome(run: Run) -> Callable[[], None]:
    """Move the outcome of ``run``'s attempt (its job was cancelled before it started) aside,
    so that the same attempt can run; returns what puts it back (the submission failed)."""
    from workbench.runs.outcome import outcome_path

    outcome = outcome_path(Path(run.run_dir or ""), run.attempt or 1)
    aside = outcome.with_name(NOT_STARTED)
    if outcome.is_file():  # before the job can start and write its own
        outcome.replace(aside)

    def restore() -> None:
        if aside.is_file() and not outcome.exists():
            aside.replace(outcome)

    return restore


def mark_restarted(project: Project, index: RunIndex, run: Run, job: str, cluster: str, *, note: str = "") -> Run:
    """Slurm accepted ``run``'s never-started attempt again as job ``job``: ``queued``, a watcher."""
    attempt = run.attempt or 1
    index.update_run(run.id, status=RunStatus.QUEUED, ended_at=None, exit_code=None, signal=None, error=None,
                     traceback=None, heartbeat_at=time.time(), stop_requested_at=None, stop_mode=None,
                     stop_reason=None)
    record_submission(index, run, attempt, job, cluster, note or "; submitted again: the earlier job never started")
    index.add_event(run.id, "requeued", f"submitted again as slurm job {job} (it never started)",
                    {"from": run.status.value, "to": "queued", "job_id": job, "attempt": attempt})
    run = index.get_run(run.id) or run
    start_supervisor(project, index, run)
    return index.get_run(run.id) or run
