"""A cluster run goes on by itself after a time limit or a preemption: the job is requeued.

Jobs are submitted with ``--requeue`` and ``--signal=B:USR1@signal_lead``
(``workbench.runs.cluster_launch``). Three ways lead to the next attempt:

- **The warning.** ``signal_lead`` seconds before the time limit Slurm sends SIGUSR1 to the
  batch step (the trainer itself, or ``cluster_job``, which passes it to every rank; Slurm
  looks every 30 s, so it may come up to a minute early). The ranks agree to stop after
  the batch, rank 0 writes a checkpoint, ends the attempt ``stopped`` (outcome file and
  journal, reason :data:`WARNING_REASON`) and then, from inside the job, calls ``scontrol
  requeue $SLURM_JOB_ID`` (:func:`requeue_self`).
- **Slurm requeues the job itself**: a preemption with ``PreemptMode=REQUEUE``, a node
  failure, ``scontrol requeue`` by an administrator. The trainer gets SIGTERM, takes it for
  a graceful stop and checkpoints if it can within ``KillWait``; else the attempt ends
  without an outcome (``interrupted``) and the next one starts from the last checkpoint.
  The ``requeued`` event names the cause from ``slurmstepd``'s line in the job's output
  (:func:`requeue_cause`). Where the site sets ``preempt_send_user_signal``, a preemption
  sends the warning instead; the trainer's own requeue then finds the job pending already.
- **The warning killed the trainer**: it came while Python was still starting, before the
  trainer's handler (SIGUSR1's default action kills). The job ends ``FAILED`` with
  ``ExitCode=0:10`` and no outcome; the watcher requeues it
  (:func:`requeue_if_warned_while_starting`).

Either way the job keeps its id and runs its batch script again; ``SLURM_RESTART_COUNT``
makes it the next attempt (``WORKBENCH_ATTEMPT``). The watcher sees ``Restarts=`` grow in
``scontrol show job`` once the job is pending again (:func:`follow_requeue`): it drains the
journal, concludes the old attempt, writes the new attempt's ``context.json``, records the
attempt (``cluster.json``, the row: ``queued``, an event ``requeued``) and lets the job
start at once (``scontrol update StartTime=now``; Slurm would otherwise hold a requeued job
about two minutes). The new attempt resumes from the checkpoint exactly as ``workbench
resume`` does. A trainer that starts before its ``context.json`` exists (no watcher was
running) waits for it a while, then reads the previous attempt's (``cluster_context``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from workbench.runs._ending import finish, write_outcome_of
from workbench.runs.outcome import read_outcome
from workbench.runs.slurm import JobState, SlurmError, requeue, start_now
from workbench.store import RunIndex, RunStatus

__all__ = ["WARNING_REASON", "base_attempt", "follow_requeue", "requeue_after_warning", "requeue_cause",
           "requeue_if_warned_while_starting", "requeue_self"]

#: The stop reason of an attempt ended by Slurm's time-limit or preemption warning.
WARNING_REASON = "stopped by SIGUSR1"


def requeue_self(run_dir: Path) -> bool:
    """From inside the job, after the attempt ended on the warning: ``scontrol requeue``.

    Returns:
        Whether the job was requeued (False: not a Slurm job, or scontrol refused, said on
        stderr; the run then stays ``stopped`` and ``workbench resume`` continues it).
    """
    job = os.environ.get("SLURM_JOB_ID", "")
    if not job.isdigit() or not (Path(run_dir) / "cluster.json").is_file():
        return False
    try:
        requeue(job)
    except SlurmError as exc:
        if "pending execution" in str(exc):  # Slurm requeued it already (a preemption that sent the warning)
            print(f"workbench: slurm job {job} was requeued by Slurm itself: the next attempt resumes from the "
                  "checkpoint", file=sys.stderr, flush=True)
            return True
        print(f"workbench: could not requeue slurm job {job} ({exc}); resume the run by hand", file=sys.stderr,
              flush=True)
        return False
    print(f"workbench: slurm job {job} requeued after its warning signal: the next attempt resumes from the "
          "checkpoint", file=sys.stderr, flush=True)
    return True


def requeue_if_warned_while_starting(run_dir: Path, attempt: int, job: str, state: JobState) -> bool:
    """The watcher, once the job has ended: requeue it when the warning killed the trainer.

    SIGUSR1's default action kills: a warning that comes while the batch script or the
    Python interpreter is still starting, before the trainer installed its handler (its
    first act), ends the job ``FAILED`` with ``ExitCode=0:10`` and no outcome file. Slurm
    requeues a finished batch job too: the next attempt then runs as after any warning.

    Returns:
        Whether the job was requeued.
    """
    if state.signal != signal.SIGUSR1 or read_outcome(Path(run_dir), attempt) is not None:
        return False
    try:
        requeue(job)
    except SlurmError as exc:
        print(f"watcher: {exc}", file=sys.stderr, flush=True)
        return False
    print(f"watcher: slurm job {job}'s warning signal came while its trainer was starting (killed by SIGUSR1): "
          "requeued", file=sys.stderr, flush=True)
    return True


def requeue_after_warning(run_dir: Path, attempt: int) -> bool:
    """Rank 0, at its end: requeue the job when ``attempt`` ended ``stopped`` on the warning
    (its outcome file says so; an attempt that completed first is not run again)."""
    outcome = read_outcome(Path(run_dir), attempt)
    if outcome is None or outcome.status is not RunStatus.STOPPED:
        return False
    return requeue_self(Path(run_dir))


#: What ``slurmstepd`` writes to the job's output when it ends an attempt for a requeue
#: (``*** JOB 1234 ON node1 CANCELLED AT ... DUE TO PREEMPTION ***``), and how events say it.
_CAUSES = (("DUE TO PREEMPTION", "preempted"), ("DUE TO NODE FAILURE", "its node failed"),
           ("DUE TO JOB REQUEUE", "scontrol requeue"))


def requeue_cause(run_dir: Path, job: str, attempt: int) -> str:
    """Why Slurm ended ``attempt`` of job ``job`` for a requeue, as its output says
    (``preempted``, ``its node failed``, ``scontrol requeue``); "" when it does not say."""
    try:
        with open(Path(run_dir) / "output.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))  # the attempt's end is near the file's end
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    marker = f"=== attempt {attempt} "
    text = text[text.rfind(marker):] if marker in text else text
    for line in reversed(text.splitlines()):
        if f"*** JOB {job} " in line:
            return next((why for key, why in _CAUSES if key in line), "")
    return ""


def base_attempt(run_dir: Path, job: str) -> int:
    """The attempt that job ``job`` was submitted as (it runs attempt ``base + restarts``)."""
    from workbench.runs.cluster_launch import jobs_of

    attempts = [int(j["attempt"]) for j in jobs_of(run_dir) if str(j["job_id"]) == str(job)]
    return min(attempts) if attempts else 1


def follow_requeue(index: RunIndex, spec: Any, run_dir: Path, job: str, attempt: int, state: JobState,
                   ingester: Any) -> int:
    """The job was requeued: conclude ``attempt``, record the next one, let the job start.

    Called by the watcher once the job is pending again with more restarts than the
    attempts it has recorded. Returns the new attempt.
    """
    from workbench.runs.cluster_context import write_context
    from workbench.runs.cluster_launch import _record_job

    new = base_attempt(run_dir, job) + state.restarts
    ingester.drain()  # everything the old attempt recorded, before its status is judged
    run = index.get_run(spec.id)
    if run is None:
        return attempt
    outcome = read_outcome(run_dir, attempt)
    warned = outcome is not None and outcome.reason == WARNING_REASON  # it requeued itself
    early = outcome is None and state.signal == signal.SIGUSR1  # requeue_if_warned_while_starting
    cause = "the warning signal" if warned or early else requeue_cause(run_dir, job, attempt)
    if outcome is None and not run.status.is_final:
        finish(index, spec.id, RunStatus.INTERRUPTED, None, None,
               f"slurm job {job} was requeued ({cause or 'preemption, a node failure or scontrol requeue'}) "
               "before the trainer reported; the next attempt resumes from the last checkpoint", "")
        write_outcome_of(index, spec.id, run_dir, attempt)
    elif outcome is not None and not run.status.is_final:
        index.update_run(spec.id, status=outcome.status, ended_at=outcome.ended_at, exit_code=outcome.exit_code,
                         signal=outcome.signal)
    previous = (index.get_run(spec.id) or run).status
    _record_job(run_dir, new, job)
    index.update_run(spec.id, status=RunStatus.QUEUED, attempt=new, ended_at=None, exit_code=None, signal=None,
                     error=None, traceback=None, heartbeat_at=time.time(), stop_requested_at=None, stop_mode=None,
                     stop_reason=None, status_reason=f"slurm job {job}: requeued (attempt {new})")
    row = index.get_run(spec.id)
    if row is not None:
        write_context(index, row, run_dir, new)
    index.add_event(spec.id, "requeued", f"slurm job {job} requeued after attempt {attempt} ({previous.value}"
                    f"{f', {cause}' if cause else ''}); attempt {new} resumes from the last checkpoint",
                    {"attempt": new, "previous_status": previous.value, "job_id": job, "restarts": state.restarts,
                     "cause": cause or None})
    start_now(job)
    return new
