"""A run's supervisor: ``python -m workbench.runs.supervisor RUN_DIR``.

A small workbench process (no torch), started in its own session so that closing the
terminal or the TUI never stops a run. It is the run's owner (DESIGN.md, "Who owns a
run"): it starts the training process — one, or N under ``torch.distributed.run`` — with
stdout and stderr appended to ``output.log``, polls the run's row every second for a stop
request and delivers it (SIGINT to the training processes for a graceful stop; SIGKILL for
a kill, or when the grace period is over), waits, and writes the outcome: exit code or
signal, ended time, final status. SIGTERM or SIGINT sent to the supervisor itself are
recorded as a graceful stop request in the row, then handled the same way.

A script run (``[scripts.NAME]``, ``spec.kind == "script"``) is supervised the same way
with its command in place of the training process: in its own process group (a stop is
SIGINT to the group, then SIGKILL after the grace period), holding the run's trainer lock
through an inherited file descriptor, while a thread reads its lines back from
``output.log`` (never a pipe: the script must not depend on its supervisor) and records the
scalars they hold (``workbench.runs.capture``); see ``workbench.runs.script_supervisor``.

Usage: ``python -m workbench.runs.supervisor RUN_DIR [--index PATH --run-id ID]``. The
index and id are given by the launcher so that even a run whose ``run.toml`` cannot be
read is marked ``failed`` with the reason.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.runs.control import STOP_GRACE
from workbench.runs.locks import trainer_alive
from workbench.runs.numerics import numerics_to_reuse, training_env
from workbench.runs.spec import RunSpec, read_spec
from workbench.runs._ending import (
    finish,
    record_sample,
    rotate_log,
    sampler_for,
    signal_name,
    stopped,
    write_outcome_of,
)
from workbench.store import Run, RunIndex, RunStatus, StopMode

__all__ = ["main", "rotate_log", "training_command"]


def training_command(spec: RunSpec, run_dir: Path) -> list[str]:
    """The argument list that starts the training process(es) of ``spec``."""
    if spec.backend == "ddp":  # node 0 of a run across machines (--nnodes) has nodes.json
        from workbench.runs.cluster_nodes import read_rendezvous, torchrun_command

        return torchrun_command(sys.executable, spec.nproc, run_dir, read_rendezvous(run_dir))
    return [sys.executable, "-m", "workbench.runs.train", str(run_dir)]


def _training_pids(child: subprocess.Popen[bytes], backend: str) -> list[int]:
    """The processes that train: the child, or torchrun's workers under ddp."""
    if backend != "ddp":
        return [child.pid]
    try:
        import psutil

        return [p.pid for p in psutil.Process(child.pid).children(recursive=False)] or [child.pid]
    except Exception:  # noqa: BLE001 - the child may be gone already
        return [child.pid]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            return "\n".join(fh.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def _arguments(args: list[str]) -> tuple[Path, str | None, str | None]:
    run_dir = Path(args[0]).resolve()
    index = run_id = None
    rest = args[1:]
    while rest:
        flag, value, rest = rest[0], rest[1] if len(rest) > 1 else None, rest[2:]
        if flag == "--index":
            index = value
        elif flag == "--run-id":
            run_id = value
    return run_dir, index, run_id


def _unreadable_spec(run_dir: Path, index_path: str | None, run_id: str | None, error: str) -> int:
    """The spec cannot be read: say so in the run's row (``failed``), never leave it live."""
    print(error, file=sys.stderr, flush=True)
    path = Path(index_path) if index_path else run_dir.parent.parent / "index.db"
    run_id = run_id or run_dir.name
    if not path.is_file():
        return 1
    index = RunIndex(path)
    try:
        if index.get_run(run_id) is not None:
            finish(index, run_id, RunStatus.FAILED, None, None, f"cannot start: {error}", "")
    finally:
        index.close()
    return 1


def main(argv: list[str] | None = None) -> int:
    """Supervise one attempt of the run in ``argv[0]``; return the exit status."""
    run_dir, index_path, run_id = _arguments(sys.argv[1:] if argv is None else argv)
    stopping = threading.Event()
    signalled = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def on_stop(signum: int, frame: Any) -> None:
        signalled.set()  # recorded in the row by the main loop (no SQLite in a handler)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # The launcher started us with SIGTERM and SIGINT blocked: a stop sent while we were
    # starting is pending, and reaches on_stop now, before any training process exists.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        spec = read_spec(run_dir)
    except WorkbenchError as exc:
        return _unreadable_spec(run_dir, index_path, run_id, str(exc))
    index = RunIndex(spec.index)
    row = index.get_run(spec.id)
    attempt = row.attempt if row else 1
    log_path = run_dir / "output.log"
    if spec.kind == "script":
        from workbench.runs.script_supervisor import supervise_script

        return supervise_script(spec, run_dir, index, row, attempt, signalled)
    from workbench.runs.cluster_launch import is_cluster_run

    if is_cluster_run(run_dir):  # a Slurm job: this process is its watcher (workbench.runs.cluster_watch)
        from workbench.runs.cluster_watch import watch

        return watch(spec, run_dir, index, attempt, signalled)

    def stop_request() -> Run | None:
        """The run's row when a stop is requested (by the row, or by a signal to us)."""
        if signalled.is_set():
            signalled.clear()
            index.request_stop(spec.id, StopMode.GRACEFUL, "signal to the supervisor")
        current = index.get_run(spec.id)
        return current if current is not None and current.stop_requested_at is not None else None

    # Numerics variables (MKL_CBWR, OMP_NUM_THREADS for DDP …) must be there before torch
    # loads; a resume or a fork takes over what its earlier attempt (or its parent) recorded.
    parent = index.get_run(row.parent_id) if row is not None and row.parent_id else None
    env = training_env(os.environ, deterministic=spec.deterministic, backend=spec.backend,
                       record=numerics_to_reuse(run_dir, attempt, parent.run_dir if parent else None,
                                                parent.id if parent else ""))
    env["PYTHONUNBUFFERED"] = "1"
    env["WORKBENCH_RUN_DIR"] = str(run_dir)
    env["WORKBENCH_ATTEMPT"] = str(attempt)  # every rank must know it (only rank 0 reads the index)
    with log_path.open("ab") as log:
        log.write(f"\n=== attempt {attempt} · {time.strftime('%Y-%m-%d %H:%M:%S')} · "
                  f"{spec.task} on {spec.device}/{spec.backend} ===\n".encode())
        log.flush()
        if stop_request() is not None:  # asked to stop before training started: do not start it
            log.write(b"stopped before the training process started\n")
            stopped(index, spec.id, None, None, "stopped before training started")
            write_outcome_of(index, spec.id, run_dir, attempt)
            index.close()
            return 0
        try:
            child = subprocess.Popen(training_command(spec, run_dir), cwd=spec.project_root,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
        except OSError as exc:
            finish(index, spec.id, RunStatus.FAILED, None, None, f"could not start training: {exc}", "")
            return 1
        index.update_run(spec.id, pid=child.pid, pgid=os.getpgid(0))
        ingester = _start_ingest(spec, run_dir)
        sampler = sampler_for(child.pid)
        killed = False
        while True:
            request = stop_request()
            if request is not None and not killed:
                if request.stop_mode is StopMode.KILL or (request.stop_requested_at or 0) + STOP_GRACE < time.time():
                    log.write(b"stop: killing the training process\n")
                    log.flush()
                    _kill(child, spec.backend, signal.SIGKILL)
                    killed = True
                elif not stopping.is_set():
                    stopping.set()
                    _kill(child, spec.backend, signal.SIGINT, children_only=True)
            try:
                code = child.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if spec.max_log_bytes:
                    rotate_log(log_path, spec.max_log_bytes)
                if sampler is not None and sampler.due():
                    record_sample(index, spec.id, attempt, sampler)
        if sampler is not None:
            sampler.close()
        if ingester is not None:  # what the trainer recorded is in the index before we judge
            try:
                ingester.stop()
            except Exception as exc:  # noqa: BLE001 - the outcome must still be written
                log.write(f"supervisor: journal ingest failed: {exc}\n".encode())
    if trainer_alive(run_dir):
        # Our child exited but another process trains this run (it was adopted or started
        # meanwhile): the row and the outcome are that trainer's to write.
        with log_path.open("ab") as log:
            log.write(b"supervisor: another trainer holds this run; leaving its status alone\n")
        index.close()
        return 0
    _conclude(index, spec, code, stopping.is_set(), log_path, attempt)
    write_outcome_of(index, spec.id, run_dir, attempt)
    from workbench.runs.artifacts import record_artifacts

    record_artifacts(index, spec.id, run_dir)
    index.close()
    return 0


def journal_mode(spec: RunSpec) -> bool:
    """Whether rank 0 of this run records to its journal (``WORKBENCH_SINK`` overrides the spec)."""
    return (os.environ.get("WORKBENCH_SINK") or spec.sink) == "journal"


def _start_ingest(spec: RunSpec, run_dir: Path) -> Any:
    """In journal mode, a thread that ingests the run's journal every 0.2 s; else None."""
    if not journal_mode(spec):
        return None
    from workbench.runs.ingest import JournalIngester

    ingester = JournalIngester(spec.index, run_dir, spec.id)
    ingester.drain()  # what an earlier attempt (or a supervisor that died) left
    return ingester.start()


def _kill(child: subprocess.Popen[bytes], backend: str, sig: int, children_only: bool = False) -> None:
    pids = _training_pids(child, backend)
    for pid in pids if children_only else [*pids, child.pid]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)\s*\(pid:\s*(\d+)\)", re.DOTALL)


def killed_rank(log_tail: str) -> tuple[int, int, int] | None:
    """From ``torch.distributed.run``'s failure report: the rank that a signal killed first.

    Returns:
        ``(rank, signal, pid)``, or None when the first failure was not a signal.
    """
    found = None
    for match in _ROOT_CAUSE.finditer(log_tail):
        found = match
    if found is None:
        return None
    rank, exitcode, pid = (int(g) for g in found.groups())
    return (rank, -exitcode, pid) if exitcode < 0 else None


def _conclude(index: RunIndex, spec: RunSpec, code: int, stop_requested: bool, log_path: Path,
              attempt: int) -> None:
    """Write the final status from the exit code and what the training process reported."""
    run = index.get_run(spec.id)
    if run is None or run.attempt != attempt:
        return  # deleted, or resumed meanwhile: the row belongs to the newer attempt
    reported = run.status
    sig = -code if code < 0 else None
    if spec.backend == "ddp" and code != 0 and run.stop_mode is not StopMode.KILL:
        killed = killed_rank(_tail(log_path, 80))
        if killed is not None:
            # The other ranks then fail with a gloo/nccl "connection reset": not the cause.
            rank, rank_signal, pid = killed
            name = signal_name(rank_signal)
            finish(index, spec.id, RunStatus.INTERRUPTED, code, rank_signal,
                    f"rank {rank} (pid {pid}) was killed by {name}; the other ranks stopped with it; "
                    "resume it to continue", "")
            return
    if reported.is_final and code == 0 or reported is RunStatus.FAILED:
        index.update_run(spec.id, exit_code=code, signal=sig, ended_at=run.ended_at or time.time())
        return
    if run.stop_mode is StopMode.KILL and sig == signal.SIGKILL:
        finish(index, spec.id, RunStatus.INTERRUPTED, code, sig,
                "killed on request (workbench stop --kill); resume it from its last checkpoint", "")
        return
    interrupted_at_start = code == 1 and _tail(log_path, 1).strip() == "KeyboardInterrupt"
    if stop_requested and (sig == signal.SIGINT or interrupted_at_start
                           or (spec.backend == "ddp" and sig is None and code != 0)):
        # The SIGINT we forwarded reached the process before it could handle it (still
        # starting up; while `python -m` still looks for the module, Python exits 1 with
        # a KeyboardInterrupt, not by the signal): the user asked for a stop, and a stop it is.
        stopped(index, spec.id, code, sig, "stopped while training was starting")
        return
    if sig is not None:
        name = signal_name(sig)
        finish(index, spec.id, RunStatus.INTERRUPTED, code, sig,
                f"the training process was killed by {name}; resume it to continue", "")
    elif spec.backend == "ddp" and code != 0 and run.error:
        finish(index, spec.id, RunStatus.FAILED, code, None, run.error, run.traceback or _tail(log_path))
    elif spec.backend == "ddp" and code != 0:
        finish(index, spec.id, RunStatus.INTERRUPTED, code, None,
                f"a training process died (torchrun exited with {code}); see output.log", _tail(log_path))
    elif code != 0:
        finish(index, spec.id, RunStatus.FAILED, code, None,
                f"the training process exited with code {code} before reporting; see output.log",
                _tail(log_path))
    else:
        finish(index, spec.id, RunStatus.FAILED, code, None,
                "the training process exited without reporting an outcome", _tail(log_path))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - last resort: the run must not stay "running"
        traceback.print_exc()
        sys.exit(1)
