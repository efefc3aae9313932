"""Adopting a cluster run whose watcher is gone (the user logged out, the login node rebooted).

The Slurm job does not depend on its watcher: it keeps running, and its trainer keeps
appending to the journal. The next workbench process that sees the run live with no
watcher (``reconcile``, run by ``workbench ls`` and the app; ``workbench stop``) starts a
detached watcher and returns at once. One watcher per run: the adopter takes the run's
``watcher.lock`` without waiting (held: someone watches; nothing to do) and hands the
locked file to the watcher it starts (an inherited descriptor, named in
``WORKBENCH_WATCHER_LOCK_FD``), so two adopters at once start one watcher.

An attempt can also end (``stopped`` on the time-limit warning, or on a preemption's
SIGTERM) while its job goes on: the job is requeued and runs the next attempt
(``workbench.runs.cluster_requeue``). A watcher that dies between ingesting the end and
following the requeue leaves the row ended with ``status_reason`` still naming the job (a
watcher clears it when it concludes an attempt). Such a row is adopted too while the job is
still active: the new watcher follows the requeue and releases the job's start. Once the
job has ended there is nothing to follow: the reason is cleared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workbench.runs.cluster_launch import is_cluster_run
from workbench.runs.locks import FileLock, LockHeld
from workbench.store import Run, RunIndex, RunStatus

__all__ = ["LOCK_FD_ENV", "WATCHER_LOCK", "adopt", "unconcluded"]

#: Held by a cluster run's watcher for as long as it lives.
WATCHER_LOCK = "watcher.lock"
#: The environment variable naming the inherited, already locked ``watcher.lock`` descriptor.
LOCK_FD_ENV = "WORKBENCH_WATCHER_LOCK_FD"


def unconcluded(run: Run) -> bool:
    """Whether ``run``'s attempt ended but no watcher concluded it (its job may go on, requeued)."""
    return run.status in (RunStatus.STOPPED, RunStatus.INTERRUPTED) \
        and (run.status_reason or "").startswith("slurm job ")


def _job_goes_on(index: RunIndex, run: Run) -> bool:
    """For an :func:`unconcluded` run (its watcher lock held): whether its attempt's job is
    still active. A job that has ended (or that the controller forgot) clears the row's
    reason; one Slurm cannot be asked about is left for a later look."""
    from workbench.runs.cluster_launch import last_job
    from workbench.runs.slurm import SlurmError, job_state

    job = last_job(Path(run.run_dir or ""), run.attempt)
    if job is None:
        return False
    try:
        state = job_state(job)
    except SlurmError:
        return False
    if state is not None and state.active:
        return True
    index.update_run(run.id, status_reason=None)  # concluded: nothing follows the job any more
    return False


def adopt(index: RunIndex, run: Run) -> int | None:
    """Start a detached watcher for cluster run ``run`` unless one watches it: a live run, or
    an :func:`unconcluded` one whose job is still active (requeued, or about to be).

    Returns:
        The new watcher's pid, or None (not a cluster run, ended, or already watched).
    """
    if not (run.status.is_live or unconcluded(run)) or not is_cluster_run(run.run_dir) or index.path is None:
        return None
    run_dir = Path(run.run_dir or "")
    try:
        lock = FileLock(run_dir / WATCHER_LOCK).acquire(wait=0.0)
    except LockHeld:
        return None
    if not run.status.is_live and not _job_goes_on(index, run):
        lock.release()
        return None
    fd = lock._fd
    assert fd is not None
    env = dict(os.environ)
    env.update({LOCK_FD_ENV: str(fd), "PYTHONUNBUFFERED": "1"})
    try:
        with open(run_dir / "supervisor.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workbench.runs.supervisor", str(run_dir), "--index", str(index.path),
                 "--run-id", run.id],
                cwd=str(run_dir), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=env, pass_fds=(fd,))
    finally:
        lock.release()  # the watcher holds its inherited copy of the locked file
    what = "the job" if run.status.is_live else \
        f"the job, which went on after attempt {run.attempt} ended {run.status.value} (a requeue)"
    index.add_event(run.id, "adopted", f"its watcher was gone; a new watcher (pid {proc.pid}) follows {what}")
    return proc.pid
