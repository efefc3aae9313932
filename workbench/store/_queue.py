"""The run queue in the ``runs`` table (a RunIndex mixin).

A run *waits* in the queue while it is ``queued`` with a ``queued_at`` and no owner yet
(``supervisor_pid`` is NULL). A run *holds a slot* while it is ``running``, or ``queued``
and not waiting (being launched: a queue runner took it, or a plain ``workbench run`` is
starting it). The order is ``priority`` (higher first), then ``queued_at`` (FIFO), then id.

Taking a slot is one ``BEGIN IMMEDIATE`` transaction that re-reads what it decides on (the
run still waits, the project's, the sweep's and the GPU's slots are still free) and marks
the run, so two queue runners, or a runner and a plain launch, never overfill a limit. The
judgement of which processes are alive lives in ``workbench.runs``; this module only
stores and counts.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.store._db import update_time
from workbench.store.records import Run

if TYPE_CHECKING:
    import contextlib
    import threading

__all__ = ["HOLDS_SLOT", "LAUNCHING", "WAITING", "QueueTable", "SlotUsage"]

#: SQL condition: the run waits in the queue (no owner yet).
WAITING = "status = 'queued' AND queued_at IS NOT NULL AND supervisor_pid IS NULL"
#: SQL condition: the run holds a slot (running, or being launched).
HOLDS_SLOT = ("(status = 'running' OR (status = 'queued' AND"
              " (queued_at IS NULL OR supervisor_pid IS NOT NULL)))")

#: The reason a run of the queue shows from its take until it runs.
LAUNCHING = "launching (the queue started it)"

_ORDER = "ORDER BY priority DESC, queued_at ASC, id ASC"


def _gpu_of(assigned: str | None, device: str | None) -> str | None:
    """The GPU a slot-holding run uses: its assigned device, else an explicit ``cuda[:N]``."""
    name = assigned or device or ""
    if name == "cuda":
        return "cuda:0"  # torch's default GPU
    return name if name.startswith("cuda:") else None


@dataclass(frozen=True)
class SlotUsage:
    """Who holds slots now.

    Attributes:
        running: How many runs hold a slot in the whole project.
        by_sweep: How many of them belong to each sweep.
        gpus: The GPUs (``cuda:N``) the slot holders use.
    """

    running: int = 0
    by_sweep: dict[str, int] = field(default_factory=dict)
    gpus: frozenset[str] = frozenset()


#: Whether a run (by its folder) trains on another machine, e.g. a Slurm cluster's: it holds
#: no slot of this machine (``workbench.runs.cluster_launch.is_cluster_run``).
Elsewhere = Callable[[str | None], bool]


def _usage(conn: sqlite3.Connection, elsewhere: Elsewhere | None = None) -> SlotUsage:
    rows = conn.execute(f"SELECT sweep_id, assigned_device, device, run_dir FROM runs WHERE {HOLDS_SLOT}").fetchall()
    if elsewhere is not None:
        rows = [row for row in rows if not elsewhere(row[3])]
    by_sweep: dict[str, int] = {}
    gpus = set()
    for sweep_id, assigned, device, _ in rows:
        if sweep_id:
            by_sweep[sweep_id] = by_sweep.get(sweep_id, 0) + 1
        gpu = _gpu_of(assigned, device)
        if gpu:
            gpus.add(gpu)
    return SlotUsage(len(rows), by_sweep, frozenset(gpus))


def _runs(cursor: sqlite3.Cursor) -> list[Run]:
    names = [column[0] for column in cursor.description]
    return [Run.from_row(dict(zip(names, row))) for row in cursor.fetchall()]


def wait_reason(usage: SlotUsage, run: Run, *, max_running: int | None, sweep_parallel: int | None,
                gpus: Sequence[str]) -> tuple[str | None, str | None]:
    """Whether ``run`` could take a slot now, and which GPU it would get.

    Args:
        usage: Who holds slots.
        run: A waiting run.
        max_running: The project's limit (``None``: none).
        sweep_parallel: The run's sweep's limit (``None``: none).
        gpus: The GPUs the run may use (empty: it needs none).

    Returns:
        ``(reason, gpu)``: a reason to wait (``None`` when it may start) and the GPU it
        gets (``None`` when it needs none, or must wait).
    """
    if max_running is not None and usage.running >= max_running:
        return f"waiting for a slot: {usage.running} of {max_running} running (project limit)", None
    if run.sweep_id and sweep_parallel is not None:
        held = usage.by_sweep.get(run.sweep_id, 0)
        if held >= sweep_parallel:
            return (f"waiting for a slot: {held} of {sweep_parallel} running in sweep {run.sweep_id}"
                    " (sweep limit)"), None
    if gpus:
        free = [gpu for gpu in gpus if gpu not in usage.gpus]
        if not free:
            which = gpus[0] if len(gpus) == 1 else f"all {len(gpus)} GPUs"
            return f"waiting for a GPU: {which} in use (one run per GPU)", None
        return None, free[0]
    return None, None


class QueueTable:
    """Methods of :class:`~workbench.store.RunIndex` for the run queue."""

    _conn: sqlite3.Connection
    _lock: threading.RLock

    if TYPE_CHECKING:
        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def get_run(self, run_id: str) -> Run | None: ...
        def add_event(self, run_id: str, kind: str, message: str = "", data: Any = None) -> int: ...

    def queued_runs(self, limit: int | None = None) -> list[Run]:
        """The runs waiting in the queue, in the order they start (one indexed query).

        Args:
            limit: At most this many.

        Returns:
            The runs: priority (higher first), then queued first.
        """
        sql = f"SELECT * FROM runs WHERE {WAITING} {_ORDER}"
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            return _runs(self._conn.execute(sql, params))

    def queue_waiting(self) -> bool:
        """Whether any run waits in the queue (one indexed query, for cheap checks)."""
        with self._lock:
            return self._conn.execute(f"SELECT 1 FROM runs WHERE {WAITING} LIMIT 1").fetchone() is not None

    def slot_usage(self, elsewhere: Elsewhere | None = None) -> SlotUsage:
        """Who holds slots now: the project's count, per sweep, and the GPUs in use.

        Args:
            elsewhere: Says which runs train on another machine (a cluster's): they hold
                no slot here. None: every run counts.
        """
        with self._read() as conn:
            return _usage(conn, elsewhere)

    def sweep_parallel(self, sweep_id: str | None) -> int | None:
        """A sweep's concurrency limit (``sweeps.parallel``); ``None`` when it has none."""
        if not sweep_id:
            return None
        with self._lock:
            row = self._conn.execute("SELECT parallel FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def take_slot(self, run_id: str, *, owner_pid: int, owner_create_time: float | None,
                  max_running: int | None, gpus: Sequence[str] = (),
                  elsewhere: Elsewhere | None = None) -> tuple[Run | None, str | None]:
        """Give a waiting run a slot, atomically.

        In one ``BEGIN IMMEDIATE`` transaction: the run must still wait (queued, no owner,
        no stop requested), and the project's limit, its sweep's limit and a GPU must still
        be free. The run is then marked as being launched: its owner is ``owner_pid`` (the
        queue runner) until the supervisor it starts takes over, its reason ``launching``,
        and its GPU, if it needs one, is recorded in ``assigned_device``.

        Args:
            run_id: The run.
            owner_pid: The process that starts it (the queue runner).
            owner_create_time: That process's start time (pids are reused).
            max_running: The project's limit (``None``: none).
            gpus: The GPUs it may use, in preference order (empty: it needs none).
            elsewhere: Says which runs train on another machine (see :meth:`slot_usage`).

        Returns:
            ``(run, None)`` when taken; ``(None, reason)`` when it must wait (the reason,
            for people), or ``(None, None)`` when it no longer waits (started, stopped or
            deleted meanwhile).
        """
        with self.write() as conn:
            run = next(iter(_runs(conn.execute(
                f"SELECT * FROM runs WHERE id = ? AND {WAITING} AND stop_requested_at IS NULL", (run_id,)))), None)
            if run is None:
                return None, None
            reason, gpu = wait_reason(_usage(conn, elsewhere), run, max_running=max_running,
                                      sweep_parallel=self.sweep_parallel(run.sweep_id), gpus=gpus)
            if reason is not None:
                return None, reason
            conn.execute(
                "UPDATE runs SET supervisor_pid = ?, supervisor_create_time = ?, assigned_device = ?,"
                " status_reason = ?, heartbeat_at = ?, updated_at = ? WHERE id = ?",
                (owner_pid, owner_create_time, gpu, LAUNCHING, time.time(),
                 update_time(conn), run_id),
            )
            self.add_event(run_id, "dequeued", "the queue started it" + (f" on {gpu}" if gpu else ""),
                           {"device": gpu, "waited_s": round(time.time() - (run.queued_at or time.time()), 3)})
        return self.get_run(run_id), None

    def release_slot(self, run_id: str, owner_pid: int, reason: str) -> bool:
        """Put a run whose launch never happened back in the queue (its launcher died).

        Only if it is still ``queued`` and owned by ``owner_pid``: a supervisor that took
        over meanwhile keeps it.

        Returns:
            Whether the run waits again.
        """
        with self.write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET supervisor_pid = NULL, supervisor_create_time = NULL, assigned_device = NULL,"
                " status_reason = ?, updated_at = ? WHERE id = ? AND status = 'queued'"
                " AND queued_at IS NOT NULL AND supervisor_pid = ?",
                (reason, update_time(conn), run_id, owner_pid),
            )
            if cursor.rowcount:
                self.add_event(run_id, "requeued", reason)
            return bool(cursor.rowcount)

    def clear_launch_reasons(self) -> int:
        """Clear the ``launching`` reason of queue runs that are running now (one statement).

        Returns:
            How many runs changed.
        """
        sql = "FROM runs WHERE status = 'running' AND status_reason = ?"
        with self._lock:  # a read first: most passes have nothing to clear (no write lock)
            if self._conn.execute(f"SELECT 1 {sql} LIMIT 1", (LAUNCHING,)).fetchone() is None:
                return 0
        with self.write() as conn:
            return conn.execute(f"UPDATE runs SET status_reason = NULL, updated_at = ? WHERE id IN"
                                f" (SELECT id {sql})", (update_time(conn), LAUNCHING)).rowcount

    def launching_queue_runs(self) -> list[Run]:
        """Runs of the queue being launched (taken, their supervisor not yet running them)."""
        with self._lock:
            return _runs(self._conn.execute(
                "SELECT * FROM runs WHERE status = 'queued' AND queued_at IS NOT NULL"
                " AND supervisor_pid IS NOT NULL"))

    def set_wait_reason(self, run_id: str, reason: str) -> bool:
        """Record why a waiting run waits (only while it waits; no change, no write)."""
        with self.write() as conn:
            cursor = conn.execute(
                f"UPDATE runs SET status_reason = ?, updated_at = ? WHERE id = ? AND {WAITING}"
                " AND coalesce(status_reason, '') != ?",
                (reason, update_time(conn), run_id, reason),
            )
            return bool(cursor.rowcount)

    def set_priority(self, run_id: str, priority: int) -> bool:
        """Change a waiting run's priority (higher starts first).

        Returns:
            Whether the run waits in the queue (and now has this priority).
        """
        with self.write() as conn:
            cursor = conn.execute(
                f"UPDATE runs SET priority = ?, updated_at = ? WHERE id = ? AND {WAITING}",
                (int(priority), update_time(conn), run_id),
            )
            if cursor.rowcount:
                self.add_event(run_id, "priority", f"priority {int(priority)}", {"priority": int(priority)})
            return bool(cursor.rowcount)

    def move_to_top(self, run_id: str) -> int | None:
        """Give a waiting run a priority above every other waiting run's.

        Returns:
            Its new priority, or ``None`` when it does not wait in the queue.
        """
        with self.write() as conn:
            (top,) = conn.execute(f"SELECT max(priority) FROM runs WHERE {WAITING} AND id != ?",
                                  (run_id,)).fetchone()
            priority = int(top) + 1 if top is not None else 0
            current = conn.execute(f"SELECT priority FROM runs WHERE id = ? AND {WAITING}", (run_id,)).fetchone()
            if current is None:
                return None
            if top is not None and int(current[0]) > int(top):
                return int(current[0])  # already first
            return priority if self.set_priority(run_id, priority) else None

    def cancel_queued(self, run_id: str, reason: str = "user") -> bool:
        """End a waiting run ``stopped`` without starting it (a stop request on it).

        Atomic with :meth:`take_slot`: either the queue took the run first (then its
        supervisor delivers the stop) or it never starts.

        Returns:
            Whether the run was waiting and is now stopped.
        """
        now = time.time()
        with self.write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'stopped', ended_at = ?, stop_requested_at = ?, stop_mode = 'graceful',"
                f" stop_reason = ?, status_reason = ?, updated_at = ? WHERE id = ? AND {WAITING}",
                (now, now, reason, "stopped while queued: never started", update_time(conn), run_id),
            )
            if cursor.rowcount:
                self.add_event(run_id, "stopped", "stopped while queued: never started",
                               {"from": "queued", "to": "stopped", "reason": reason})
            return bool(cursor.rowcount)
