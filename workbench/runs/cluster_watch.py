"""The watcher of a cluster run: its owner on the launch host (DESIGN.md, "Who owns a run").

``python -m workbench.runs.supervisor RUN_DIR`` runs :func:`watch` when the run folder
holds ``cluster.json``. For the attempt's Slurm job it

- ingests the run's journal into the index every 0.2 s (``workbench.runs.ingest``);
- follows the job's state every second (``scontrol show job``; once the controller has
  forgotten the job, ``sacct`` where accounting exists): while it waits the run is
  ``queued`` with ``status_reason`` ``slurm job N: PENDING (Resources)``, while it runs the
  reason names the job and its nodes;
- delivers a stop request from the row: a pending job is cancelled (``stopped``, never
  started); a running one gets ``scancel --batch --signal=INT`` (the trainer, or under DDP
  ``cluster_job``, which passes it to torchrun's workers, checkpoints and ends ``stopped``),
  and ``--signal=KILL`` for a kill or once the grace period is over (``--full`` for DDP:
  every process of the job);
- follows a requeue (the time-limit or preemption warning, ``workbench.runs.cluster_requeue``):
  the same job runs again as the next attempt, which this watcher records and follows;
- once the job has ended: drains the journal, then concludes the attempt — from the
  trainer's own ``attempts/<n>/outcome.json`` when it wrote one, else from the job's end
  (a signal, a time limit, a preemption, a node failure: ``interrupted``; an exit code:
  ``failed``; a job that vanished without an outcome: ``interrupted``), outcome file first.

One watcher per run: it holds ``watcher.lock`` in the run folder for as long as it lives
(a second one exits at once). A SIGTERM or SIGINT to the watcher ends only the watcher
(the job keeps running; the next ``workbench ls`` adopts the run).
"""

from __future__ import annotations

import signal as signals
import sys
import threading
import time
from pathlib import Path
from typing import Any

from workbench.runs._ending import finish, signal_name, stopped, write_outcome_of
from workbench.runs.cluster_adopt import LOCK_FD_ENV, WATCHER_LOCK
from workbench.runs.cluster_launch import last_job
from workbench.runs.cluster_requeue import base_attempt, follow_requeue, requeue_if_warned_while_starting
from workbench.runs.control import STOP_GRACE
from workbench.runs.locks import FileLock, LockHeld
from workbench.runs.outcome import read_outcome
from workbench.runs.slurm import JobState, SlurmError, cancel, job_state, sacct_state
from workbench.store import RunIndex, RunStatus, StopMode

__all__ = ["conclude", "watch"]

_LOOK = 1.0
_HEARTBEAT = 5.0
_FORGOTTEN_LOOKS = 3  # the controller must miss the job this many times before it counts as gone
_ENDED_LOOKS = 10  # seconds a trainer's outcome may take to show after the job ended


def watch(spec: Any, run_dir: Path, index: RunIndex, attempt: int, signalled: threading.Event) -> int:
    """Own the cluster run in ``run_dir`` until its attempt's job has ended; return 0."""
    from workbench.runs.liveness import process_create_time
    from workbench.runs.ingest import JournalIngester

    import os

    inherited = os.environ.pop(LOCK_FD_ENV, "")
    if inherited.isdigit():  # an adopter took the lock and handed it over
        lock = FileLock(run_dir / WATCHER_LOCK)
        lock._fd = int(inherited)
    else:
        try:
            lock = FileLock(run_dir / WATCHER_LOCK).acquire(wait=0.5)
        except LockHeld:
            print(f"watcher: another watcher owns run {spec.id}; exiting", file=sys.stderr, flush=True)
            index.close()
            return 0
    index.update_run(spec.id, supervisor_pid=os.getpid(), supervisor_create_time=process_create_time(os.getpid()))
    job = last_job(run_dir, attempt)
    if job is None:
        finish(index, spec.id, RunStatus.FAILED, None, None, f"attempt {attempt} was never submitted to Slurm", "")
        lock.release()
        return 1
    ingester = JournalIngester(spec.index, run_dir, spec.id)
    ingester.drain()  # what an earlier watcher left
    ingester.start()
    known_restarts = attempt - base_attempt(run_dir, job)  # a requeued job runs its next attempt
    last: JobState | None = None
    missing = 0
    delivered: str | None = None
    reason = ""
    beat = 0.0
    try:
        while True:
            if signalled.is_set():  # only this watcher ends: the job goes on, and is adopted later
                print(f"watcher: signalled; run {spec.id}'s job {job} keeps running", file=sys.stderr, flush=True)
                return 0
            try:
                state = job_state(job)
            except SlurmError as exc:
                print(f"watcher: {exc}", file=sys.stderr, flush=True)
                time.sleep(_LOOK)
                continue
            if state is None:
                missing += 1
                if missing >= _FORGOTTEN_LOOKS:
                    break
            else:
                missing = 0
                last = state
                if not state.active:
                    if requeue_if_warned_while_starting(run_dir, attempt, job, state):
                        continue  # the next look sees it pending again: the next attempt
                    break
                if state.restarts > known_restarts and state.state in ("PENDING", "REQUEUED", "REQUEUE_HOLD"):
                    # Slurm requeued the job (its warning, a preemption): the next attempt
                    attempt = follow_requeue(index, spec, run_dir, job, attempt, state, ingester)
                    known_restarts, delivered, reason = state.restarts, None, ""
                    continue
            run = index.get_run(spec.id)
            if run is None or run.attempt != attempt:
                return 0  # deleted, or a newer attempt has its own watcher
            if state is not None:
                text = f"slurm job {job}: {state.describe()}"
                if text != reason and run.status.is_live:
                    reason = text
                    index.update_run(spec.id, status_reason=text)
            if time.monotonic() - beat > _HEARTBEAT and state is not None and state.pending:
                beat = time.monotonic()
                index.update_run(spec.id, heartbeat_at=time.time())  # the owner is alive: not stale
            delivered = _deliver_stop(index, spec, run, job, state, delivered)
            time.sleep(_LOOK)
        ingester.stop()
        conclude(index, spec, run_dir, attempt, job, last, delivered)
        return 0
    finally:
        ingester.close()
        index.close()
        lock.release()


def _deliver_stop(index: RunIndex, spec: Any, run: Any, job: str, state: JobState | None,
                  delivered: str | None) -> str | None:
    """Deliver the row's stop request to the job (once per kind). Returns what was sent."""
    if run.stop_requested_at is None or state is None:
        return delivered
    try:
        if state.pending:
            if delivered != "cancel":
                cancel(job)
                return "cancel"
            return delivered
        kill = run.stop_mode is StopMode.KILL or run.stop_requested_at + STOP_GRACE < time.time()
        if kill and delivered != "KILL":
            # --batch/--full: SIGKILL itself reaches the trainer (a plain `scancel --signal=KILL`
            # terminates the job: SIGTERM first, which the trainer takes for a graceful stop).
            cancel(job, "KILL", batch=spec.backend != "ddp", full=spec.backend == "ddp")
            return "KILL"
        if not kill and delivered is None:
            # The trainer, or (DDP) cluster_job, which tells the workers; on several nodes
            # the srun step's tasks (one cluster_job per node) rather than srun itself.
            cancel(job, "INT", batch=not _multi_node(spec))
            return "INT"
    except SlurmError as exc:
        print(f"watcher: {exc}", file=sys.stderr, flush=True)
    return delivered


def _multi_node(spec: Any) -> bool:
    """Whether the run's job spans several nodes (``cluster.json``)."""
    from workbench.runs.cluster_launch import read_placement

    try:
        return read_placement(Path(spec.code_dir).parent).nodes > 1
    except Exception:  # noqa: BLE001 - an unreadable placement: as one node
        return False


def _final_state(job: str, last: JobState | None) -> JobState | None:
    """The job's end as Slurm tells it: the controller's last word, or accounting's."""
    if last is not None and not last.active:
        return last
    return sacct_state(job) or last


def conclude(index: RunIndex, spec: Any, run_dir: Path, attempt: int, job: str, last: JobState | None,
             delivered: str | None) -> None:
    """Write the attempt's final status once its job has ended (the journal drained)."""
    deadline = time.monotonic() + _ENDED_LOOKS
    outcome = read_outcome(run_dir, attempt)
    run = index.get_run(spec.id)
    while outcome is None and run is not None and not run.status.is_final and time.monotonic() < deadline \
            and (last is not None and last.state == "COMPLETED"):
        time.sleep(0.5)  # a shared filesystem may show the trainer's last write late
        outcome = read_outcome(run_dir, attempt)
    if run is None or run.attempt != attempt:
        return
    if outcome is not None:
        if not run.status.is_final:  # its journal record was lost: the file says how it ended
            fields: dict[str, Any] = {"exit_code": outcome.exit_code, "signal": outcome.signal}
            if outcome.status is RunStatus.FAILED:
                fields["error"] = outcome.reason
            index.update_run(spec.id, status=outcome.status, ended_at=outcome.ended_at, **fields)
            index.add_event(spec.id, outcome.status.value, outcome.reason or f"slurm job {job} ended")
        index.update_run(spec.id, status_reason=None)
        return
    if run.status.is_final:
        write_outcome_of(index, spec.id, run_dir, attempt)
        return
    end = _final_state(job, last)
    code, sig = (end.exit_code, end.signal or None) if end is not None else (None, None)
    where = f"slurm job {job}"
    index.update_run(spec.id, status_reason=None)
    if delivered == "cancel":
        stopped(index, spec.id, code, sig, f"stopped while {where} was pending: it never started")
    elif run.stop_mode is StopMode.KILL or delivered == "KILL":
        finish(index, spec.id, RunStatus.INTERRUPTED, code, sig,
               f"killed on request ({where}: scancel --signal=KILL); resume it from its last checkpoint", "")
    elif delivered == "INT" and (sig == signals.SIGINT or code not in (None, 0)):
        stopped(index, spec.id, code, sig, "stopped while training was starting")
    elif end is None:
        finish(index, spec.id, RunStatus.INTERRUPTED, None, None,
               f"{where} vanished without an outcome (Slurm no longer knows it); resume it to continue", "")
    elif end.state in ("TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "CANCELLED"):
        why = {"TIMEOUT": "hit its time limit", "PREEMPTED": "was preempted", "NODE_FAIL": "lost its node",
               "OUT_OF_MEMORY": "ran out of memory", "BOOT_FAIL": "could not boot its node",
               "DEADLINE": "passed its deadline", "CANCELLED": "was cancelled (scancel or an administrator)"}
        finish(index, spec.id, RunStatus.INTERRUPTED, code, sig,
               f"{where} {why[end.state]} before the trainer reported; resume it to continue", "")
    elif sig:
        finish(index, spec.id, RunStatus.INTERRUPTED, code, sig,
               f"the training process was killed by {signal_name(sig)} ({where}); resume it to continue", "")
    else:
        finish(index, spec.id, RunStatus.FAILED, code, None,
               f"{where} ended {end.state} with exit code {code} before the trainer reported (its setup lines "
               "or python failed?); see output.log", _tail(run_dir / "output.log"))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
