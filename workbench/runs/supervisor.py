"""A run's supervisor: ``python -m workbench.runs.supervisor RUN_DIR``.

A small workbench process (no torch), started in its own session so that closing the
terminal or the TUI never stops a run. It starts the training process — one, or N under
``torch.distributed.run`` — with stdout and stderr appended to ``output.log``, forwards a
stop request (SIGTERM or SIGINT to the supervisor) as SIGINT to the training processes,
waits, and writes the outcome: exit code or signal, ended time, final status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["main", "training_command"]

#: Seconds a stopping run gets to finish its batch and write its checkpoint before SIGKILL.
STOP_GRACE = 60.0


def training_command(spec: Any, run_dir: Path) -> list[str]:
    """The argument list that starts the training process(es) of ``spec``."""
    train = ["-m", "workbench.runs.train", str(run_dir)]
    if spec.backend == "ddp":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={spec.nproc}", "--max-restarts=0", *train]
    return [sys.executable, *train]


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


def main(argv: list[str] | None = None) -> int:
    """Supervise one attempt of the run in ``argv[0]``; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    run_dir = Path(args[0]).resolve()
    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def forward_stop() -> None:
        assert child is not None
        for pid in _training_pids(child, spec.backend):
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def on_stop(signum: int, frame: Any) -> None:
        if child is None or child.poll() is not None:
            stopping.set()
            return
        if stopping.is_set():  # a second request: no more waiting
            _kill(child, spec.backend, signal.SIGKILL)
            return
        stopping.set()
        forward_stop()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # The launcher started us with SIGTERM and SIGINT blocked: a stop sent while we were
    # starting is pending, and reaches on_stop now, before any training process exists.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    from workbench.runs.spec import read_spec
    from workbench.store import RunIndex

    spec = read_spec(run_dir)
    index = RunIndex(spec.index)
    row = index.get_run(spec.id)
    attempt = row["attempt"] if row else 1
    log_path = run_dir / "output.log"

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["WORKBENCH_RUN_DIR"] = str(run_dir)
    env["WORKBENCH_ATTEMPT"] = str(attempt)  # every rank must know it (only rank 0 reads the index)
    if spec.backend == "ddp":
        env.setdefault("OMP_NUM_THREADS", "1")  # N processes on few cores: no oversubscription
    with log_path.open("ab") as log:
        log.write(f"\n=== attempt {attempt} · {time.strftime('%Y-%m-%d %H:%M:%S')} · "
                  f"{spec.task} on {spec.device}/{spec.backend} ===\n".encode())
        log.flush()
        if stopping.is_set():  # asked to stop before training started: do not start it
            log.write(b"stopped before the training process started\n")
            _stopped(index, spec.id, None, None, "stopped before training started")
            index.close()
            return 0
        try:
            child = subprocess.Popen(training_command(spec, run_dir), cwd=spec.project_root,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
        except OSError as exc:
            _finish(index, spec.id, "failed", None, None, f"could not start training: {exc}", "")
            return 1
        index.update_run(spec.id, pid=child.pid, pgid=os.getpgid(0))
        if stopping.is_set():  # asked to stop while the child was being started
            forward_stop()
        while True:
            try:
                code = child.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if stopping.is_set() and _stop_started(index, spec.id) + STOP_GRACE < time.time():
                    _kill(child, spec.backend, signal.SIGKILL)
    _conclude(index, spec, code, stopping.is_set(), log_path, attempt)
    from workbench.runs.artifacts import record_artifacts

    record_artifacts(index, spec.id, run_dir)
    index.close()
    return 0


def _stop_started(index: Any, run_id: str) -> float:
    for event in reversed(index.events(run_id)):
        if event["kind"] == "stop-requested":
            return float(event["time"])
    return time.time()


def _kill(child: subprocess.Popen[bytes], backend: str, sig: int) -> None:
    for pid in _training_pids(child, backend) + [child.pid]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _finish(index: Any, run_id: str, status: str, code: int | None, sig: int | None,
            error: str, tb: str) -> None:
    fields: dict[str, Any] = {"status": status, "ended_at": time.time(), "exit_code": code, "signal": sig}
    if error:
        fields["error"] = error
    if tb:
        fields["traceback"] = tb
    index.update_run(run_id, **fields)
    index.add_event(run_id, status, error)


def _stopped(index: Any, run_id: str, code: int | None, sig: int | None, message: str) -> None:
    index.update_run(run_id, status="stopped", ended_at=time.time(), exit_code=code, signal=sig)
    index.add_event(run_id, "stopped", message)


def _conclude(index: Any, spec: Any, code: int, stop_requested: bool, log_path: Path, attempt: int) -> None:
    """Write the final status from the exit code and what the training process reported."""
    row = index.get_run(spec.id) or {}
    if int(row.get("attempt") or 1) != attempt:
        return  # the run was resumed meanwhile: the row belongs to the newer attempt
    reported = row.get("status")
    sig = -code if code < 0 else None
    if reported in ("completed", "stopped", "failed") and code == 0 or reported == "failed":
        index.update_run(spec.id, exit_code=code, signal=sig, ended_at=row.get("ended_at") or time.time())
        return
    if stop_requested and (sig == signal.SIGINT or (spec.backend == "ddp" and sig is None and code != 0)):
        # The SIGINT we forwarded reached the process before it could handle it (still
        # starting up): the user asked for a stop, and a stop it is.
        _stopped(index, spec.id, code, sig, "stopped while training was starting")
        return
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        _finish(index, spec.id, "interrupted", code, sig,
                f"the training process was killed by {name}; resume it to continue", "")
    elif spec.backend == "ddp" and code != 0:
        _finish(index, spec.id, "interrupted", code, None,
                f"a training process died (torchrun exited with {code}); see output.log", _tail(log_path))
    elif code != 0:
        _finish(index, spec.id, "failed", code, None,
                f"the training process exited with code {code} before reporting; see output.log",
                _tail(log_path))
    else:
        _finish(index, spec.id, "failed", code, None,
                "the training process exited without reporting an outcome", _tail(log_path))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - last resort: the run must not stay "running"
        traceback.print_exc()
        sys.exit(1)
