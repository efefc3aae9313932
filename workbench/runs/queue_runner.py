"""The project's queue runner: ``python -m workbench.runs.queue_runner PROJECT_ROOT [--lock-fd FD]``.

One per project, guaranteed by an ``flock`` on ``<state_dir>/queue.lock`` (it dies with the
process: a killed runner is replaced by the next workbench process that sees waiting runs).
A small workbench process (no torch), started detached by whoever queues a run
(:func:`workbench.runs.queue.ensure_queue_runner`). Every pass — when the index changes,
at most every 0.1 s, and at least every 0.5 s — it reconciles liveness, puts back in the
queue the runs whose launch died half-way, takes slots for waiting runs in order (each
take one ``BEGIN IMMEDIATE`` transaction: see ``workbench.store._queue``), starts their
supervisors, and records why the others wait. It exits when no run waits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.runs._queue_start import QUEUE_LOCK
from workbench.runs.launch import start_supervisor
from workbench.runs.liveness import owner_alive, process_create_time, reconcile
from workbench.runs.locks import FileLock, LockHeld, trainer_alive
from workbench.runs.cluster_launch import is_cluster_run
from workbench.runs.queue import gpus_for, slot_usage
from workbench.runs.spec import read_spec, write_spec
from workbench.store import Run, RunIndex
from workbench.store._queue import wait_reason

__all__ = ["QueueRunner", "main"]

#: Seconds between passes when nothing in the index changed.
IDLE_PASS_S = 0.5
#: Seconds between looks at whether the index changed (``PRAGMA data_version``).
LOOK_S = 0.05
#: The fewest seconds between two passes (metric writes change the index all the time).
MIN_PASS_S = 0.1
#: How many waiting runs one pass considers (the rest wait behind them anyway).
WINDOW = 500


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} queue[{os.getpid()}]: {message}", flush=True)


class QueueRunner:
    """One pass of the queue at a time, for one project (see the module's docstring).

    Args:
        root: The project folder.
    """

    def __init__(self, root: Path) -> None:
        from workbench.project import load_project

        self.root = Path(root)
        self.project = load_project(self.root)
        self._project_mtime = self._mtime()
        self.index = RunIndex(self.project.index_path)
        self.pid = os.getpid()
        self.create_time = process_create_time(self.pid)
        self._probe: dict[str, Any] | None = None
        self._probed = False

    def _mtime(self) -> float:
        try:
            return self.project.file.stat().st_mtime
        except OSError:
            return 0.0

    def _refresh_project(self) -> None:
        """Read ``workbench.toml`` again when it changed (a new ``max_running`` applies)."""
        mtime = self._mtime()
        if mtime == self._project_mtime:
            return
        from workbench.project import load_project

        try:
            self.project = load_project(self.root)
        except WorkbenchError as exc:
            _log(f"keeping the previous settings: {exc}")
        self._project_mtime = mtime

    def probe(self) -> dict[str, Any] | None:
        """The device probe's answer, asked once and only if a run may need a GPU.

        The answer the launch check cached moments ago (``devices.json``) is taken as it
        is: probing again costs a torch import, and the list of GPUs is all we need.
        """
        if not self._probed:
            self._probed = True
            try:
                self._probe = json.loads((self.project.state_dir / "devices.json").read_text())["probe"]
                return self._probe
            except (OSError, ValueError, KeyError, TypeError):
                pass
            from workbench.runs.probe import ProbeError, probe_devices

            try:
                self._probe = probe_devices(self.project.state_dir)
            except ProbeError as exc:
                _log(f"device probe failed ({exc}); runs are not given GPUs")
        return self._probe

    def requeue_orphans(self) -> None:
        """Put back in the queue the runs whose launcher died between taking a slot and
        their supervisor starting (their owner is gone and nothing trains them)."""
        for run in self.index.launching_queue_runs():
            if run.supervisor_pid is None or owner_alive(run) or trainer_alive(run.run_dir):
                continue
            if self.index.release_slot(run.id, run.supervisor_pid, "back in the queue: its launch died"):
                _log(f"run {run.id}: its launch died; back in the queue")

    def one_pass(self) -> list[str]:
        """Reconcile, then start waiting runs while slots are free; record why others wait.

        Returns:
            The ids of the runs it started.
        """
        reconcile(self.index)
        self._refresh_project()
        self.requeue_orphans()
        self.index.clear_launch_reasons()
        started: list[str] = []
        reasons: dict[str, str] = {}
        usage = slot_usage(self.index)
        for run in self.index.queued_runs(limit=WINDOW):
            if run.stop_requested_at is not None:  # asked to stop while waiting
                self.index.cancel_queued(run.id, run.stop_reason or "user")
                continue
            gpus = gpus_for(run, self.probe() if _may_need_gpu(run) else None)
            reason, _ = wait_reason(usage, run, max_running=self.project.max_running,
                                    sweep_parallel=self.index.sweep_parallel(run.sweep_id), gpus=gpus)
            if reason is None:
                taken, reason = self.index.take_slot(run.id, owner_pid=self.pid, owner_create_time=self.create_time,
                                                     max_running=self.project.max_running, gpus=gpus,
                                                     elsewhere=is_cluster_run)
                if taken is not None:
                    self.start(taken)
                    started.append(taken.id)
                    usage = slot_usage(self.index)
                    continue
            if reason is not None:
                reasons[run.id] = reason
        if reasons:
            with self.index.write():
                for run_id, reason in reasons.items():
                    self.index.set_wait_reason(run_id, reason)
        return started

    def start(self, run: Run) -> None:
        """Start a run that holds a slot: its GPU into ``run.toml``, then its supervisor."""
        try:
            if run.assigned_device and run.run_dir:
                spec = read_spec(Path(run.run_dir))
                if spec.device != run.assigned_device:
                    spec.device = run.assigned_device  # the assigned GPU wins over "cuda"
                    write_spec(Path(run.run_dir), spec)
            pid = start_supervisor(self.project, self.index, run)
        except (OSError, WorkbenchError) as exc:
            _log(f"run {run.id}: could not start: {exc}")
            self.index.release_slot(run.id, self.pid, f"waiting: its start failed ({exc}); tried again later")
            return
        _log(f"started run {run.id} (supervisor {pid})" + (f" on {run.assigned_device}" if run.assigned_device else ""))

    def changed(self) -> bool:
        """Whether another connection committed to the index since the last look."""
        (version,) = self.index.connection.execute("PRAGMA data_version").fetchone()
        changed = version != getattr(self, "_data_version", None)
        self._data_version = version
        return changed

    def close(self) -> None:
        """Close the index."""
        self.index.close()


def _may_need_gpu(run: Run) -> bool:
    return (run.device or "auto") in ("cuda", "auto") and run.backend != "ddp"


class _QueueLock:
    """The queue lock: handed over by the process that started us (an inherited, locked
    file descriptor), or taken here; released and taken again at the end of the queue."""

    def __init__(self, path: Path, inherited_fd: int | None) -> None:
        self.path = path
        self._lock = FileLock(path)
        self._fd = inherited_fd

    def acquire(self) -> bool:
        """Hold the lock (keep the inherited one); False when another process holds it."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
            return True
        try:
            self._lock.acquire(wait=0)
        except LockHeld:
            return False
        return True

    def release(self) -> None:
        """Let the lock go."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._lock.release()


def serve(root: Path, lock_fd: int | None = None) -> int:
    """Hold the queue lock and run passes until no run waits; return the exit status.

    Args:
        root: The project folder.
        lock_fd: The queue lock, already held, inherited from the process that started us.
    """
    from workbench.project import load_project

    project = load_project(root)
    lock = _QueueLock(project.state_dir / QUEUE_LOCK, lock_fd)
    if not lock.acquire():
        return 0  # another runner serves this project
    runner = QueueRunner(root)
    _log(f"serving {root}")
    try:
        last = 0.0
        while True:
            now = time.monotonic()
            if now - last >= IDLE_PASS_S or (now - last >= MIN_PASS_S and runner.changed()):
                runner.one_pass()
                runner.changed()  # our own writes are not news
                last = time.monotonic()
                if not runner.index.queue_waiting():
                    # Let go, then look once more: a run queued while we held the lock saw a
                    # runner and started none, and is seen by this second look.
                    lock.release()
                    if not runner.index.queue_waiting():
                        break
                    if not lock.acquire():
                        break  # a new runner took over
            time.sleep(LOOK_S)
    finally:
        runner.close()
        lock.release()
    _log("the queue is empty; exiting")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m workbench.runs.queue_runner PROJECT_ROOT``."""
    args = list(sys.argv[1:] if argv is None else argv)
    lock_fd = None
    if len(args) == 3 and args[1] == "--lock-fd" and args[2].isdigit():
        lock_fd = int(args[2])
        del args[1:]
    if len(args) != 1:
        print("usage: python -m workbench.runs.queue_runner PROJECT_ROOT [--lock-fd FD]", file=sys.stderr)
        return 2
    try:
        return serve(Path(args[0]), lock_fd)
    except WorkbenchError as exc:
        _log(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
