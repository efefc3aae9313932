"""Adopting a cluster run whose watcher is gone (the user logged out, the login node rebooted).

The Slurm job does not depend on its watcher: it keeps running, and its trainer keeps
appending to the journal. The next workbench process that sees the run live with no
watcher (``reconcile``, run by ``workbench ls`` and the app; ``workbench stop``) starts a
detached watcher and returns at once. One watcher per run: the adopter takes the run's
``watcher.lock`` without waiting (held: someone watches; nothing to do) and hands the
locked file to the watcher it starts (an inherited descriptor, named in
``WORKBENCH_WATCHER_LOCK_FD``), so two adopters at once start one watcher.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workbench.runs.cluster_launch import is_cluster_run
from workbench.runs.locks import FileLock, LockHeld
from workbench.store import Run, RunIndex

__all__ = ["LOCK_FD_ENV", "WATCHER_LOCK", "adopt"]

#: Held by a cluster run's watcher for as long as it lives.
WATCHER_LOCK = "watcher.lock"
#: The environment variable naming the inherited, already locked ``watcher.lock`` descriptor.
LOCK_FD_ENV = "WORKBENCH_WATCHER_LOCK_FD"


def adopt(index: RunIndex, run: Run) -> int | None:
    """Start a detached watcher for live cluster run ``run`` unless one watches it.

    Returns:
        The new watcher's pid, or None (not a cluster run, not live, or already watched).
    """
    if not run.status.is_live or not is_cluster_run(run.run_dir) or index.path is None:
        return None
    run_dir = Path(run.run_dir or "")
    try:
        lock = FileLock(run_dir / WATCHER_LOCK).acquire(wait=0.0)
    except LockHeld:
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
    index.add_event(run.id, "adopted", f"its watcher was gone; a new watcher (pid {proc.pid}) follows the job")
    return proc.pid
