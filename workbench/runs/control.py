"""Stopping and removing runs from the workbench process."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["remove_run", "stop_run", "supervisor_alive"]

LIVE = ("queued", "running")


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
    if not supervisor_alive(row):
        index.reconcile(stale_after=0)
        return False
    index.add_event(row["id"], "stop-requested", "graceful stop requested")
    try:
        os.kill(int(row["supervisor_pid"]), signal.SIGTERM)
    except ProcessLookupError:
        index.reconcile(stale_after=0)
        return False
    return True


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
