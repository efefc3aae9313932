"""The ``runs`` table: create, read, resolve, change and delete runs (a RunIndex mixin)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.store._db import update_time
from workbench.store._schema import RUN_COLUMNS
from workbench.store.errors import AmbiguousRun, InvalidValue, RunNotFound, UnknownField
from workbench.store.ids import current_host, new_run_id
from workbench.store.records import EVALUATION, Run, RunStatus, StopMode

if TYPE_CHECKING:
    import contextlib
    import threading

__all__ = ["RunsTable"]

_ENUM_COLUMNS = {"status": RunStatus.parse, "stop_mode": StopMode}

# A run that ends with one of these statuses ends its running pipeline step with the second
# (a completed run's steps were each ended by the trainer already).
_STEP_END = {"failed": "failed", "stopped": "stopped", "interrupted": "interrupted", "pruned": "stopped"}


def _encode_run_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(RUN_COLUMNS))
    if unknown:
        raise UnknownField(
            f"runs has no column {', '.join(unknown)}; known: {', '.join(RUN_COLUMNS)}"
        )
    out = dict(fields)
    for column, parse in _ENUM_COLUMNS.items():
        if out.get(column) is not None:
            try:
                out[column] = parse(out[column]).value
            except ValueError as exc:
                raise InvalidValue(str(exc)) from None
    if out.get("config") is not None:
        out["config"] = json.dumps(dict(out["config"]))
    if out.get("tags") is not None:
        tags = out["tags"]
        out["tags"] = json.dumps([tags] if isinstance(tags, str) else list(tags))
    if out.get("git_dirty") is not None:
        out["git_dirty"] = int(bool(out["git_dirty"]))
    if out.get("command") is not None:
        out["command"] = json.dumps([str(part) for part in out["command"]])
    if out.get("overrides") is not None:
        out["overrides"] = json.dumps(dict(out["overrides"]))
    return out


def _runs(cursor: sqlite3.Cursor) -> list[Run]:
    return Run.from_rows([column[0] for column in cursor.description], cursor.fetchall())


class RunsTable:
    """Methods of :class:`~workbench.store.RunIndex` over the ``runs`` table."""

    _conn: sqlite3.Connection
    _lock: threading.RLock

    if TYPE_CHECKING:
        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def add_event(self, run_id: str, kind: str, message: str = "", data: Any = None) -> int: ...
        def end_open_steps(self, run_id: str, status: str, error: str | None = None) -> int: ...

    def create_run(self, **fields: Any) -> Run:
        """Add a run.

        Args:
            **fields: Columns of ``runs``. ``id`` defaults to :func:`new_run_id`,
                ``status`` to ``queued``, ``created_at`` to now, ``attempt`` to 1 and
                ``host`` to this machine. ``config`` (a dict) and ``tags`` (a list) are
                stored as JSON.

        Returns:
            The new run.

        Raises:
            UnknownField: A field is not a column.
            InvalidValue: A bad status, or the name or id is taken.
        """
        row = _encode_run_fields(fields)
        row.setdefault("status", RunStatus.QUEUED.value)
        row.setdefault("created_at", time.time())
        row.setdefault("attempt", 1)
        row.setdefault("host", current_host())
        given_id = "id" in row
        for _ in range(5):
            if not given_id:
                row["id"] = new_run_id()
            try:
                with self.write() as conn:
                    row["updated_at"] = update_time(conn)
                    names = ", ".join(row)
                    marks = ", ".join("?" * len(row))
                    conn.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", list(row.values()))
                break
            except sqlite3.IntegrityError as exc:
                if "runs.name" in str(exc):
                    raise InvalidValue(f"a run named {row['name']!r} already exists") from exc
                if "runs.id" not in str(exc) or given_id:
                    raise InvalidValue(f"cannot add run: {exc}") from exc
        run = self.get_run(row["id"])
        assert run is not None
        return run

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Change columns of a run; ``updated_at`` moves forward.

        Args:
            run_id: The run's id.
            **fields: Columns and their new values (``config`` and ``tags`` as Python
                values, ``status`` as a :class:`RunStatus` or its name).

        Raises:
            UnknownField: A field is not a column.
            InvalidValue: A bad status, a taken name, or an attempt to change ``id``.
            RunNotFound: No run has this id.
        """
        values = _encode_run_fields(fields)
        if "id" in values:
            raise InvalidValue("a run's id cannot change")
        values.pop("updated_at", None)
        with self.write() as conn:
            values["updated_at"] = update_time(conn)
            assignments = ", ".join(f"{name} = ?" for name in values)
            try:
                cursor = conn.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?", [*values.values(), run_id]
                )
            except sqlite3.IntegrityError as exc:
                raise InvalidValue(f"cannot update run {run_id}: {exc}") from exc
            if cursor.rowcount == 0:
                raise RunNotFound(run_id)
            status = values.get("status")
            if status in _STEP_END:  # the run's attempt ended: so did the step it was in
                self.end_open_steps(run_id, _STEP_END[status], values.get("error"))

    def get_run(self, run_id: str) -> Run | None:
        """Read one run by its exact id.

        Args:
            run_id: The id.

        Returns:
            The run, or ``None``.
        """
        with self._lock:
            runs = _runs(self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)))
        return runs[0] if runs else None

    def resolve_run(self, ref: str) -> Run:
        """Find the run a user means: an id, a run name, or a unique prefix of an id.

        A reference that matches a run's name and another run's id (or id prefix) is
        ambiguous: it is refused rather than guessed.

        Args:
            ref: What the user typed.

        Returns:
            The run.

        Raises:
            RunNotFound: Nothing matches.
            AmbiguousRun: The prefix matches several ids.
        """
        ref = ref.strip()
        if not ref:
            raise RunNotFound(ref)
        lowered = ref.lower()
        with self._read() as conn:
            by_name = _runs(conn.execute("SELECT * FROM runs WHERE name = ?", (ref,)))
            # ids use only [0-9a-z], all below "~": the range is the prefix's ids (an exact
            # id is its own prefix).
            by_id = _runs(conn.execute(
                "SELECT * FROM runs WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT 50",
                (lowered, lowered + "~"),
            ))
        exact = [run for run in by_id if run.id == lowered]
        if exact and not (by_name and by_name[0].id != exact[0].id):
            return exact[0]
        if by_name:
            others = [run.id for run in by_id if run.id != by_name[0].id]
            if others:  # a name that reads as another run's id: never guess
                raise AmbiguousRun(ref, [by_name[0].id, *others])
            return by_name[0]
        if not by_id:
            raise RunNotFound(ref)
        if len(by_id) > 1:
            raise AmbiguousRun(ref, [run.id for run in by_id])
        return by_id[0]

    def list_runs(
        self,
        status: str | RunStatus | Iterable[str | RunStatus] | None = None,
        task: str | None = None,
        limit: int | None = None,
        *,
        evaluations: bool = False,
    ) -> list[Run]:
        """List runs, newest first.

        Args:
            status: Keep runs with this status (or any of these statuses).
            task: Keep runs of this task.
            limit: At most this many.
            evaluations: Include evaluations (runs of kind ``evaluation``, listed under
                their run by :meth:`evaluations_of`).

        Returns:
            The runs.
        """
        clauses, params = [], []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(RunStatus.parse(s).value for s in statuses)
        if task is not None:
            clauses.append("task = ?")
            params.append(task)
        if not evaluations:
            clauses.append("kind != ?")
            params.append(EVALUATION)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM runs{where} ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            return _runs(self._conn.execute(sql, params))

    def evaluations_of(self, run_id: str) -> list[Run]:
        """The evaluations (tests and evaluations of a checkpoint) of a run, oldest first."""
        with self._lock:
            return _runs(self._conn.execute(
                "SELECT * FROM runs WHERE parent_id = ? AND kind = ? ORDER BY created_at, id",
                (run_id, EVALUATION),
            ))

    def run_names(self) -> set[str]:
        """The names every run has, read without decoding whole rows (launches check them)."""
        with self._lock:
            return {name for (name,) in self._conn.execute("SELECT name FROM runs WHERE name IS NOT NULL")}

    def run_ids(self) -> set[str]:
        """Every run's id."""
        with self._lock:
            return {run_id for (run_id,) in self._conn.execute("SELECT id FROM runs")}

    def count_runs(self) -> int:
        """How many runs the index holds."""
        with self._lock:
            (count,) = self._conn.execute("SELECT count(*) FROM runs").fetchone()
        return int(count)

    def runs_changed_since(self, since: float) -> list[Run]:
        """Runs whose row changed after ``since`` (created, updated or heartbeat).

        ``updated_at`` values increase strictly in commit order, so a poller that passes
        the largest ``updated_at`` it has seen misses nothing. Deleted runs are not
        reported.

        Args:
            since: An ``updated_at`` value (unix seconds); 0 for every run.

        Returns:
            The runs, oldest change first.
        """
        with self._lock:
            return _runs(self._conn.execute(
                "SELECT * FROM runs WHERE updated_at > ? ORDER BY updated_at", (since,)
            ))

    def delete_run(self, run_id: str) -> bool:
        """Delete a run with its metrics, set-aside points, events and artifacts rows.

        The run's folder on disk is left alone.

        Args:
            run_id: The run's id.

        Returns:
            Whether the run existed.
        """
        with self.write() as conn:
            for table in ("metrics", "metrics_aside", "metrics_rollup", "events", "artifacts", "run_steps"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            return conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # -- liveness queries (the judgement itself lives in workbench.runs) ------------

    def stale_live_runs(self, cutoff: float) -> list[Run]:
        """Live runs whose heartbeat (or start, or creation) is older than ``cutoff``.

        One indexed query; the caller decides which of them are really gone.
        """
        with self._lock:
            return _runs(self._conn.execute(
                "SELECT * FROM runs WHERE status IN ('running', 'queued')"
                " AND coalesce(heartbeat_at, started_at, created_at) < ?"
                # A run waiting in the queue has no process yet: the queue owns it.
                " AND NOT (status = 'queued' AND queued_at IS NOT NULL AND supervisor_pid IS NULL)",
                (cutoff,),
            ))

    def runs_to_reconcile(self, cutoff: float) -> list[Run]:
        """:meth:`stale_live_runs`, and the ended cluster runs whose watcher never concluded
        their attempt: ``stopped`` or ``interrupted`` while ``status_reason`` still names their
        Slurm job (a watcher clears it once the job has ended; its job may have been requeued).

        One query on the status index; the caller decides what to do with each.
        """
        with self._lock:
            return _runs(self._conn.execute(
                "SELECT * FROM runs WHERE status IN ('running', 'queued', 'stopped', 'interrupted') AND ("
                " (status IN ('running', 'queued') AND coalesce(heartbeat_at, started_at, created_at) < ?"
                "  AND NOT (status = 'queued' AND queued_at IS NOT NULL AND supervisor_pid IS NULL))"
                " OR (status IN ('stopped', 'interrupted') AND status_reason LIKE 'slurm job %'))",
                (cutoff,),
            ))

    def mark_interrupted(self, run_id: str, error: str, *, stale_before: float | None = None) -> bool:
        """Mark a live run ``interrupted`` (its processes are gone), with an event.

        The run's end time is its last sign of life (heartbeat, else start, else
        creation), not the moment this was noticed.

        Args:
            run_id: The run.
            error: The reason recorded on the run and its event.
            stale_before: Only if its heartbeat is still older than this (a run that
                came back to life in between is left alone).

        Returns:
            Whether the run was live and is now marked.
        """
        condition = "status IN ('running', 'queued')"
        params: list[Any] = []
        if stale_before is not None:
            condition += " AND coalesce(heartbeat_at, started_at, created_at) < ?"
            params.append(stale_before)
        with self.write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'interrupted',"
                " ended_at = coalesce(heartbeat_at, started_at, created_at), error = ?,"
                f" updated_at = ? WHERE id = ? AND {condition}",
                (error, update_time(conn), run_id, *params),
            )
            if not cursor.rowcount:
                return False
            self.end_open_steps(run_id, "interrupted", error)
            self.add_event(run_id, "interrupted", error)
        return True

    # -- stop requests --------------------------------------------------------------

    def request_stop(
        self, run_id: str, mode: StopMode | str = StopMode.GRACEFUL, reason: str = "user"
    ) -> Run:
        """Record a stop request in the run's row; its owner delivers it.

        A second graceful request keeps the first one's time (the grace period runs from
        the first); a kill request upgrades a graceful one.

        Args:
            run_id: The run.
            mode: ``graceful`` (checkpoint, then end) or ``kill``.
            reason: Why (``user``, ``pruned``, ``preempted`` ...).

        Returns:
            The run as it was *before* this request (so the caller can tell a repeated
            request from a first one).

        Raises:
            RunNotFound: No run has this id.
        """
        mode = StopMode(mode)
        with self.write():
            before = self.get_run(run_id)
            if before is None:
                raise RunNotFound(run_id)
            fields: dict[str, Any] = {"stop_mode": mode.value}
            if before.stop_requested_at is None:
                fields["stop_requested_at"] = time.time()
                fields["stop_reason"] = reason
            elif before.stop_mode is StopMode.KILL:
                fields["stop_mode"] = StopMode.KILL.value
            self.update_run(run_id, **fields)
        return before
