"""Starting the queue runner: one per project, detached, on demand.

Kept apart from :mod:`workbench.runs.queue` so that :func:`workbench.runs.liveness.reconcile`
can bring a dead runner back (it is adopted like any owner: the next workbench process that
sees waiting runs and no runner starts one) without importing the launcher.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.runs._launching import _env
from workbench.runs.locks import held_by_someone

if TYPE_CHECKING:
    from workbench.store import RunIndex

__all__ = ["QUEUE_LOCK", "QUEUE_LOG", "queue_runner_alive", "revive_queue", "start_queue_runner"]

#: In the state folder: held (``flock``) by the project's queue runner for as long as it lives.
QUEUE_LOCK = "queue.lock"
#: In the state folder: the queue runners' stdout and stderr.
QUEUE_LOG = "queue.log"


def queue_runner_alive(state_dir: Path) -> bool:
    """Whether a queue runner holds the project's queue lock (on this host)."""
    return held_by_someone(Path(state_dir) / QUEUE_LOCK)


def start_queue_runner(root: Path, state_dir: Path) -> int | None:
    """Start ``python -m workbench.runs.queue_runner ROOT`` in its own session, unless a
    runner holds the queue lock.

    The caller takes the queue lock itself and hands it to the runner it starts (the
    child inherits the locked file; the caller closes its copy), so the lock is held from
    the moment of the decision: two callers at once start one runner.

    Args:
        root: The project folder.
        state_dir: Its state folder (where ``queue.lock`` and ``queue.log`` live).

    Returns:
        The new runner's pid, or ``None`` when one was already running.
    """
    state_dir = Path(state_dir)
    if queue_runner_alive(state_dir):
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / QUEUE_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None  # a runner (or a caller about to start one) holds it
            raise
        with open(state_dir / QUEUE_LOG, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workbench.runs.queue_runner", str(root), "--lock-fd", str(fd)],
                cwd=str(root), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=_env(), pass_fds=(fd,),
            )
        return proc.pid
    finally:
        os.close(fd)  # the runner keeps the lock through its inherited copy


def revive_queue(index: RunIndex) -> int | None:
    """Start a queue runner if runs wait in the queue and none runs (a cheap check: one
    indexed query and, only then, one lock test).

    The project folder is read from a waiting run's ``run.toml``. An in-memory index, or
    an index whose waiting runs have no readable spec, is left alone.

    Returns:
        The new runner's pid, or ``None``.
    """
    if index.path is None or not index.queue_waiting():
        return None
    state_dir = index.path.parent
    if queue_runner_alive(state_dir):
        return None
    from workbench.errors import WorkbenchError
    from workbench.runs.spec import read_spec

    for run in index.queued_runs(limit=1):
        if not run.run_dir:
            continue
        try:
            root = Path(read_spec(Path(run.run_dir)).project_root)
        except (WorkbenchError, OSError):
            return None
        return start_queue_runner(root, state_dir)
    return None
