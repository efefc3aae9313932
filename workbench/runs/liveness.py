"""Is a run's process still there? Liveness of local runs, and reconciling the dead ones.

See DESIGN.md, "Who owns a run". The index only stores and queries; the judgement of
whether a process on this machine is alive lives here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from workbench.errors import WorkbenchError
from workbench.runs.cluster_launch import is_cluster_run
from workbench.runs.locks import trainer_alive
from workbench.store import RunIndex, current_host
from workbench.store.records import Run

__all__ = [
    "INTERRUPTED_ERROR",
    "SHUTDOWN_WAIT_S",
    "STALE_AFTER_ENV",
    "owner_alive",
    "pid_alive",
    "process_create_time",
    "reconcile",
    "run_alive",
    "stale_after",
    "wait_for_owner",
]

#: How long a command that follows an ended attempt (resume, test/eval, sweep resume) waits
#: for its owner to exit (:func:`wait_for_owner`): a DDP run's torchrun tears its ranks down
#: after the row says ``stopped``, which took over 15 s on a loaded 2-core machine.
SHUTDOWN_WAIT_S = 90.0

#: The error recorded on a run that :func:`reconcile` marks interrupted.
INTERRUPTED_ERROR = "the run's processes are gone (machine crash or kill -9); resume it to continue"

#: Environment variable: seconds without a heartbeat before a run whose supervisor is gone
#: is marked ``interrupted`` by a reader (default 15). Tests set it to 0.
STALE_AFTER_ENV = "WORKBENCH_STALE_AFTER"
_DEFAULT_STALE_AFTER = 15.0


def stale_after() -> float:
    """The heartbeat staleness window readers reconcile with (``$WORKBENCH_STALE_AFTER``)."""
    text = os.environ.get(STALE_AFTER_ENV, "").strip()
    if not text:
        return _DEFAULT_STALE_AFTER
    try:
        value = float(text)
    except ValueError:
        raise WorkbenchError(f"${STALE_AFTER_ENV} must be a number of seconds, got {text!r}") from None
    if value < 0 or value != value:
        raise WorkbenchError(f"${STALE_AFTER_ENV} must be 0 or more seconds, got {text!r}")
    return value


def process_create_time(pid: int) -> float | None:
    """When a process started, to record next to its pid (pids are reused).

    Args:
        pid: The process id.

    Returns:
        ``psutil.Process(pid).create_time()``, or ``None`` when there is no such process.
    """
    import psutil  # imported here: only a few callers need it

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def pid_alive(pid: int | None, create_time: float | None = None) -> bool:
    """Whether a process with this pid runs on this machine (a zombie does not count).

    Args:
        pid: The process id (``None`` or ``<= 0`` means no process).
        create_time: The start time recorded with the pid; when given, a process with the
            same pid that started at another time is a different process.

    Returns:
        ``True`` if it is alive.
    """
    if pid is None or pid <= 0:
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if create_time is not None and abs(process.create_time() - create_time) > 1.0:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; we may not look at it


def run_alive(run: Run) -> bool:
    """Whether any process of the run lives on this host: its owner, or a trainer holding
    the run's trainer lock (an orphan whose supervisor died)."""
    return owner_alive(run) or (run.host in (None, current_host()) and trainer_alive(run.run_dir))


def owner_alive(run: Run) -> bool:
    """Whether the run's owner (its supervisor on this machine) is alive.

    The same process, not only the same pid: the recorded start time must match. A run
    of another host is never judged alive from here.
    """
    if run.host not in (None, current_host()):
        return False
    return pid_alive(run.supervisor_pid, run.supervisor_create_time)


def wait_for_owner(index: RunIndex, run: Run, timeout: float = SHUTDOWN_WAIT_S,
                   waiting: Callable[[str], None] | None = None,
                   alive: Callable[[Run], bool] | None = None) -> Run:
    """Wait, up to ``timeout`` seconds, for the owner ``run`` names (its supervisor or
    watcher) to exit: after the row says how an attempt ended, its owner still writes its
    last words (exit status, outcome, artifacts). Tells ``waiting`` once, after a second.
    ``alive`` (default :func:`owner_alive`) says what must be gone, e.g. :func:`run_alive`.

    Returns:
        The run's row as it is then; its owner may still be alive at the deadline
        (ask ``alive`` again).
    """
    alive = alive or owner_alive
    began = time.monotonic()
    told = waiting is None
    while alive(run) and time.monotonic() < began + timeout:
        if not told and time.monotonic() > began + 1:
            waiting(f"waiting for run {run.id}'s previous attempt to finish shutting down ...")
            told = True
        time.sleep(0.1)
    return index.get_run(run.id) or run


def _gone(run: Run) -> bool:
    if run.host not in (None, current_host()):
        return False  # another machine's run: only that machine can tell
    if trainer_alive(run.run_dir):
        return False  # its owner may be gone, but a trainer still holds the run
    if run.supervisor_pid is not None:
        return not pid_alive(run.supervisor_pid, run.supervisor_create_time)
    return not pid_alive(run.pid)


def reconcile(index: RunIndex, stale_after_s: float | None = None) -> list[str]:
    """Mark ``interrupted`` the live runs of this machine whose processes are gone.

    A run qualifies only when its heartbeat (or start, or creation) is older than
    ``stale_after_s`` seconds (default :func:`stale_after`) *and* its supervisor (or,
    without one, its training process) is not alive here, so a run whose supervisor is
    alive is never marked. A cluster run is never marked here: its Slurm job decides, and
    one whose watcher is gone is adopted (``workbench.runs.cluster_adopt``), and so is one whose
    attempt ended (``stopped``, ``interrupted``) but whose watcher died before concluding it:
    its job may have been requeued (``workbench.runs.cluster_requeue``). When nothing
    qualifies this is one indexed query. Runs waiting
    in the queue have no process yet and are left alone; when some wait and no queue
    runner runs (it died), one is started (``workbench.runs._queue_start.revive_queue``:
    one more indexed query, and a lock test only when runs wait).

    Returns:
        The ids of the runs it marked.
    """
    window = stale_after() if stale_after_s is None else stale_after_s
    cutoff = time.time() - window
    changed = []
    for run in index.runs_to_reconcile(cutoff):
        if is_cluster_run(run.run_dir):  # owned through its Slurm job: a dead watcher is replaced
            if not owner_alive(run):  # (also an ended attempt its watcher never concluded: a requeue?)
                from workbench.runs.cluster_adopt import adopt

                adopt(index, run)
            continue
        if not run.status.is_live:
            continue
        if _gone(run) and index.mark_interrupted(run.id, INTERRUPTED_ERROR, stale_before=cutoff):
            changed.append(run.id)
    from workbench.runs._queue_start import revive_queue  # here: it starts processes

    revive_queue(index)
    return changed
