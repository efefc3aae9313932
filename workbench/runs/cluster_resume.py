"""Resuming a cluster run: a new attempt is a new Slurm job (``workbench resume RUN``).

``workbench.runs.resume.resume_run`` makes the checks every run gets (not live, resumable,
a checkpoint to resume from) and hands a run whose folder holds ``cluster.json`` to
:func:`resume_cluster`. The new job is submitted *before* the row changes: an ``sbatch``
that refuses leaves the run as it was. The row then becomes attempt ``n + 1``, ``queued``,
and a new watcher follows the job; the trainer on the node loads the latest checkpoint as
a local resume does (the attempt number comes from its ``context.json``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.runs.cluster_launch import last_job, submit_attempt
from workbench.runs.launch import start_supervisor
from workbench.runs.slurm import JobState, job_state
from workbench.store import Run, RunIndex, RunStatus

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.runs.spec import RunSpec

__all__ = ["live_job", "refuse_if_job_live", "restart_cluster", "resume_cluster"]


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


def resume_cluster(project: Project, index: RunIndex, run: Run, spec: RunSpec, status: RunStatus, *,
                   device: str | None = None, start: bool = True) -> Run:
    """Submit attempt ``n + 1`` of cluster run ``run`` and start its watcher.

    Raises:
        WorkbenchError: The last job still exists and has not ended, ``--device`` was
            given, or sbatch refused (one line; the run is unchanged).
    """
    run_dir = Path(run.run_dir or "")
    if device is not None and device != spec.device:
        raise WorkbenchError(f"run {run.id} runs on a cluster: its device cannot change on resume "
                             f"(fork it with --on to place it anew)")
    found = live_job(run_dir)
    if found is not None:
        previous, state = found
        raise WorkbenchError(f"run {run.id}'s slurm job {previous} is still {state.describe()}; "
                             f"stop it first (workbench stop {run.id})")
    attempt = (run.attempt or 1) + 1
    job = submit_attempt(project, index, run, spec, attempt)
    index.update_run(run.id, status=RunStatus.QUEUED, attempt=attempt, ended_at=None, exit_code=None,
                     signal=None, error=None, traceback=None, heartbeat_at=time.time(), stop_requested_at=None,
                     stop_mode=None, stop_reason=None, status_reason=f"slurm job {job}: submitted")
    index.add_event(run.id, "resumed", f"attempt {attempt} (after {status}) as slurm job {job}",
                    {"attempt": attempt, "previous_status": status.value, "device": spec.device, "job_id": job})
    run = index.get_run(run.id) or run
    if start:
        start_supervisor(project, index, run)
    return index.get_run(run.id) or run


def restart_cluster(project: Project, index: RunIndex, run: Run) -> Run:
    """Submit again a cluster run whose job was cancelled before it started (a trial of a
    stopped sweep): the same attempt, from the start, as a single job of its own; a watcher
    follows it. The cancelled job's outcome file is kept as ``outcome-not-started.json``.

    Raises:
        WorkbenchError: The run has started, is live, or sbatch refused (one line; the run
            is unchanged).
    """
    from workbench.runs.cluster_launch import record_submission, write_attempt
    from workbench.runs.outcome import outcome_path
    from workbench.runs.slurm import submit
    from workbench.runs.spec import read_spec

    if run.started_at is not None or run.status.is_live:
        raise WorkbenchError(f"run {run.id} is {run.status} and has started; resume it instead")
    run_dir = Path(run.run_dir or "")
    found = live_job(run_dir)
    if found is not None:
        previous, state = found
        raise WorkbenchError(f"run {run.id}'s slurm job {previous} is still {state.describe()}; "
                             f"stop it first (workbench stop {run.id})")
    attempt = run.attempt or 1
    spec = read_spec(run_dir)
    script, options, cluster = write_attempt(project, index, run, spec, attempt)
    outcome = outcome_path(run_dir, attempt)
    aside = outcome.with_name("outcome-not-started.json")
    if outcome.is_file():  # before the job can start and write its own
        outcome.replace(aside)
    try:
        job = submit(str(script), options, cwd=spec.project_root)
    except BaseException:
        if aside.is_file() and not outcome.exists():
            aside.replace(outcome)
        raise
    index.update_run(run.id, status=RunStatus.QUEUED, ended_at=None, exit_code=None, signal=None, error=None,
                     traceback=None, heartbeat_at=time.time(), stop_requested_at=None, stop_mode=None,
                     stop_reason=None)
    record_submission(index, run, attempt, job, cluster, "; submitted again: the earlier job never started")
    index.add_event(run.id, "requeued", f"submitted again as slurm job {job} (it never started)",
                    {"from": run.status.value, "to": "queued", "job_id": job, "attempt": attempt})
    run = index.get_run(run.id) or run
    start_supervisor(project, index, run)
    return index.get_run(run.id) or run
