"""Stopping, waiting for and removing runs from the workbench process.

A stop is a request recorded in the run's row (DESIGN.md, "Who owns a run"); the run's
owner — its supervisor — polls the row and delivers it to its training processes. A
signal is only the owner's way to reach its own children.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.runs.liveness import INTERRUPTED_ERROR, owner_alive, reconcile, run_alive
from workbench.runs.locks import TRAINER_LOCK, trainer_alive
from workbench.runs.spec import run_dir_of
from workbench.store import Run, RunIndex, RunStatus, StopMode

if TYPE_CHECKING:
    from workbench.project import Project

__all__ = ["STOP_GRACE", "StopResult", "remove_run", "stop_run", "wait_for"]

#: Seconds a stopping run gets to finish its batch and write its checkpoint before SIGKILL.
STOP_GRACE = 60.0


@dataclass(frozen=True)
class StopResult:
    """What a stop request did.

    Attributes:
        run: The run after the request.
        outcome: ``requested`` (recorded; the owner delivers it), ``already`` (a graceful
            stop was already in progress; nothing changed), ``killing`` (a kill was
            recorded), ``gone`` (its processes had vanished: marked ``interrupted``) or
            ``cancelled`` (it waited in the queue: now ``stopped``, never started).
        grace_left: For ``already``: seconds left before the owner kills the run.
    """

    run: Run
    outcome: str
    grace_left: float | None = None

    @property
    def message(self) -> str:
        """One line for people."""
        label = f"run {self.run.id}" + (f" ({self.run.name})" if self.run.name else "")
        if self.outcome == "cancelled":
            return f"{label} left the queue: stopped, never started"
        if self.outcome == "gone":
            return f"{label}: its processes were already gone; it is now interrupted"
        if self.outcome == "killing":
            return f"kill requested for {label}: it ends now, without a checkpoint"
        if self.outcome == "already":
            left = max(0, round(self.grace_left or 0))
            return (f"a stop is already in progress for {label}: it ends after the current batch "
                    f"({left} s of grace left, then it is killed); `workbench stop --kill` ends it now")
        return f"stop requested for {label}; it ends after the current batch and writes a checkpoint"


def stop_run(index: RunIndex, run: Run, *, kill: bool = False, reason: str = "user") -> StopResult:
    """Ask a live run to stop: gracefully (a checkpoint, then ``stopped``), or ``kill`` now.

    The request is recorded in the run's row; its supervisor polls the row every second
    and delivers it. A second graceful request changes nothing and says how long the
    first one has left; killing is a separate, explicit request.

    Raises:
        WorkbenchError: The run is not queued or running.
    """
    current = index.get_run(run.id) or run
    if not current.status.is_live:
        raise WorkbenchError(f"run {current.id} is {current.status}; only a queued or running run can be stopped")
    if current.queued_at is not None and index.cancel_queued(current.id, reason):
        # It waited in the queue: it ends now, never started (atomic with the queue's take).
        return StopResult(index.get_run(run.id) or current, "cancelled")
    launching = current.status is RunStatus.QUEUED and current.supervisor_pid is None
    local = current.host in (None, _host())
    from workbench.runs.cluster_launch import is_cluster_run

    cluster = is_cluster_run(current.run_dir)  # its watcher delivers the request to the Slurm job
    orphan = local and not launching and not owner_alive(current) and not cluster
    if orphan and not trainer_alive(current.run_dir):
        _mark_gone(index, current)
        return StopResult(index.get_run(run.id) or current, "gone")
    mode = StopMode.KILL if kill else StopMode.GRACEFUL
    before = index.request_stop(current.id, mode, reason)
    after = index.get_run(current.id) or current
    if kill and orphan:
        _kill_orphan(current)  # nobody else is there to deliver it
    if cluster and not launching and not owner_alive(current):
        from workbench.runs.cluster_adopt import adopt

        adopt(index, after)  # a watcher to deliver it
    if kill:
        if before.stop_mode is not StopMode.KILL:
            index.add_event(current.id, "stop-requested", "kill requested", {"mode": "kill", "reason": reason})
        return StopResult(after, "killing")
    if before.stop_requested_at is not None:
        left = before.stop_requested_at + STOP_GRACE - time.time()
        return StopResult(after, "already", left)
    index.add_event(current.id, "stop-requested", "graceful stop requested", {"mode": "graceful", "reason": reason})
    return StopResult(after, "requested")


def _kill_orphan(run: Run) -> None:
    """SIGKILL the trainer of a run whose supervisor is gone: the pid the trainer wrote in
    its lock file, and only while that lock is still held (so never a reused pid)."""
    import os
    import signal

    if run.run_dir is None:
        return
    try:
        pid = int((Path(run.run_dir) / TRAINER_LOCK).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if trainer_alive(run.run_dir) and run.pid in (None, pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _host() -> str:
    from workbench.store import current_host

    return current_host()


def _mark_gone(index: RunIndex, run: Run) -> None:
    """Mark this run (and no other: reconciling everything now would also catch runs that
    other processes are launching right now) interrupted: its supervisor is gone."""
    index.mark_interrupted(run.id, INTERRUPTED_ERROR)


def remove_run(project: Project, index: RunIndex, run: Run) -> None:
    """Delete a run: its rows, its folder and its snapshot ref, and its evaluations.

    Raises:
        WorkbenchError: The run, or one of its evaluations, is still live (stop it first).
    """
    if run_alive(run):
        raise WorkbenchError(f"run {run.id} is still running; stop it first (workbench stop {run.id})")
    from workbench.runs.cluster_launch import is_cluster_run

    if is_cluster_run(run.run_dir):  # its Slurm job writes into the folder, whether a watcher lives or not
        from workbench.runs.cluster_resume import refuse_if_job_live

        refuse_if_job_live(run, "delete")
    evaluations = [] if run.is_evaluation else index.evaluations_of(run.id)
    for evaluation in evaluations:
        deadline = time.monotonic() + (15 if evaluation.status.is_final else 0)
        while run_alive(evaluation) and time.monotonic() < deadline:
            time.sleep(0.1)  # it has ended; its supervisor is writing its last words
        if run_alive(evaluation):
            raise WorkbenchError(f"run {run.id}'s evaluation {evaluation.id} is still running; wait for it or "
                                 f"stop it first (workbench stop {evaluation.id})")
    for evaluation in evaluations:  # they share the run's snapshot: no ref of their own
        _remove_one(project, index, evaluation)
    _remove_one(project, index, run)


def _remove_one(project: Project, index: RunIndex, run: Run) -> None:
    from workbench.snapshot import SnapshotError, delete_ref

    run_dir = run_dir_of(project, run.id)
    index.delete_run(run.id)
    if run_dir.is_dir():
        shutil.rmtree(run_dir)
    try:
        delete_ref(project.root, run.id, state_dir=project.state_dir)
    except SnapshotError:
        pass


def wait_for(index: RunIndex, run_id: str, *, timeout: float | None = None, poll: float = 0.25) -> Run:
    """Poll until the run ends (or ``timeout`` seconds pass); return it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        reconcile(index)
        run = index.get_run(run_id)
        if run is None:
            raise WorkbenchError(f"run {run_id} disappeared from the index")
        if not run.status.is_live:
            return run
        if deadline is not None and time.monotonic() > deadline:
            return run
        time.sleep(poll)
