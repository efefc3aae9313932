"""Stopping and removing runs from the workbench process."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["STALE_AFTER_ENV", "reconcile", "remove_run", "stale_after", "stop_run", "supervisor_alive"]

LIVE = ("queued", "running")

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


def reconcile(index: Any) -> list[str]:
    """Mark ``interrupted`` the runs whose processes are gone (see ``RunIndex.reconcile``).

    A run qualifies only when its supervisor is gone *and* its heartbeat is older than
    :func:`stale_after` seconds, so a run whose supervisor is alive is never marked.
    """
    return index.reconcile(stale_after=stale_after())


def supervisor_alive(row: dict[str, Any]) -> bool:
    """Whether the run's supervisor is alive (the same process: pid and start time match)."""
    from workbench.store._process import current_host, pid_alive

    if row.get("host") not in (None, current_host()):
        return False
    return pid_alive(row.get("supervisor_pid"), row.get("supervisor_create_time"))


def stop_run(index: Any, row: dict[str, Any]) -> bool:
    """Ask a live run to stop gracefully (its supervisor forwards SIGINT to training).

    Returns:
        True if a stop request was sent; False if the run turned out to be gone already
        (it is then reconciled to ``interrupted``).

    Raises:
        WorkbenchError: The run is not queued or running, or runs on another machine.
    """
    from workbench.store._process import current_host

    if row["status"] not in LIVE:
        raise WorkbenchError(f"run {row['id']} is {row['status']}; only a queued or running run can be stopped")
    if row.get("host") not in (None, current_host()):
        raise WorkbenchError(f"run {row['id']} runs on {row['host']}; stop it there")
    if row.get("supervisor_pid") is None and row["status"] == "queued":
        raise WorkbenchError(f"run {row['id']} is still being launched; try again in a moment")
    if not supervisor_alive(row):
        _mark_gone(index, row)
        return False
    index.add_event(row["id"], "stop-requested", "graceful stop requested")
    try:
        os.kill(int(row["supervisor_pid"]), signal.SIGTERM)
    except ProcessLookupError:
        _mark_gone(index, row)
        return False
    return True


def _mark_gone(index: Any, row: dict[str, Any]) -> None:
    """Mark this run (and no other: ``reconcile(stale_after=0)`` would also catch runs that
    other processes are launching right now) interrupted: its supervisor is gone."""
    from workbench.store import INTERRUPTED_ERROR

    current = index.get_run(row["id"]) or row
    if current["status"] in LIVE:
        index.update_run(row["id"], status="interrupted", ended_at=time.time(), error=INTERRUPTED_ERROR)
        index.add_event(row["id"], "interrupted", INTERRUPTED_ERROR)


def remove_run(project: Any, index: Any, row: dict[str, Any]) -> None:
    """Delete a run: its rows, its folder and its snapshot ref.

    Raises:
        WorkbenchError: The run is still live (stop it first).
    """
    from workbench.runs.launch import run_dir_of
    from workbench.snapshot import SnapshotError, delete_ref

    if row["status"] in LIVE and supervisor_alive(row):
        raise WorkbenchError(f"run {row['id']} is {row['status']}; stop it first (workbench stop {row['id']})")
    run_dir = run_dir_of(project, row["id"])
    index.delete_run(row["id"])
    if run_dir.is_dir():
        shutil.rmtree(run_dir)
    try:
        delete_ref(project.root, row["id"], state_dir=project.state_dir)
    except SnapshotError:
        pass
