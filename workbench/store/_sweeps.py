"""The ``sweeps`` table: a sweep's row and the runs that carry its id (a RunIndex mixin)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.store._db import update_time
from workbench.store.errors import InvalidValue, StoreError, UnknownField
from workbench.store.ids import new_run_id
from workbench.store.records import Run

if TYPE_CHECKING:
    import contextlib
    import threading

__all__ = ["SWEEP_COLUMNS", "AmbiguousSweep", "Sweep", "SweepNotFound", "SweepsTable"]

#: The columns of ``sweeps`` (schema 5).
SWEEP_COLUMNS = ("id", "name", "task", "kind", "spec", "parallel", "metric", "direction",
                 "snapshot_commit", "status", "created_at", "updated_at")


class SweepNotFound(StoreError, LookupError):
    """No sweep matches a reference."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no sweep matches {ref!r} (`workbench sweep ls` lists them)")


class AmbiguousSweep(StoreError, LookupError):
    """A sweep reference matches several sweeps."""

    def __init__(self, ref: str, candidates: list[str]) -> None:
        self.ref = ref
        self.candidates = candidates
        super().__init__(f"{ref!r} matches {len(candidates)} sweeps ({', '.join(candidates[:5])}); "
                         "give a full sweep id")


@dataclass(frozen=True)
class Sweep:
    """One sweep as the index holds it.

    Attributes:
        id: Its id (the run id alphabet; sortable by creation time).
        name: A unique human name, or None.
        task: The task every trial runs.
        kind: ``grid``, ``random`` or ``optuna``.
        spec: What was asked, as JSON (parameters, fixed overrides, seed, trial count).
        parallel: At most this many of its runs at once (None: only the project's limit).
        metric: The metric trials are ranked by (``val/loss``), or None.
        direction: ``min`` or ``max``.
        snapshot_commit: The code snapshot every trial runs.
        status: ``running``, ``stopped`` or ``done`` (what was last asked of it).
        created_at: Unix seconds.
        updated_at: Unix seconds.
    """

    id: str
    task: str
    kind: str
    created_at: float
    updated_at: float
    name: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    parallel: int | None = None
    metric: str | None = None
    direction: str | None = None
    snapshot_commit: str | None = None
    status: str = "running"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Sweep:
        """Decode a ``sweeps`` row (``spec`` as JSON text)."""
        values = {name: row[name] for name in SWEEP_COLUMNS if name in row}
        spec = values.get("spec")
        values["spec"] = json.loads(spec) if isinstance(spec, str) else dict(spec or {})
        return cls(**values)

    @property
    def label(self) -> str:
        """The name people know it by (its name, else its id)."""
        return self.name or self.id


def _sweeps(cursor: sqlite3.Cursor) -> list[Sweep]:
    names = [column[0] for column in cursor.description]
    return [Sweep.from_row(dict(zip(names, row))) for row in cursor.fetchall()]


def _encode(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(SWEEP_COLUMNS))
    if unknown:
        raise UnknownField(f"sweeps has no column {', '.join(unknown)}; known: {', '.join(SWEEP_COLUMNS)}")
    out = dict(fields)
    if out.get("spec") is not None:
        out["spec"] = json.dumps(dict(out["spec"]), default=str)
    return out


class SweepsTable:
    """Methods of :class:`~workbench.store.RunIndex` over ``sweeps`` and ``runs.sweep_id``."""

    _conn: sqlite3.Connection
    _lock: threading.RLock

    if TYPE_CHECKING:
        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

    def create_sweep(self, **fields: Any) -> Sweep:
        """Add a sweep.

        Args:
            **fields: Columns of ``sweeps``; ``task`` and ``kind`` are required. ``id``
                defaults to a new id, ``created_at`` to now, ``spec`` (a dict) is stored
                as JSON.

        Returns:
            The new sweep.

        Raises:
            UnknownField: A field is not a column.
            InvalidValue: The name or id is taken, or ``task``/``kind`` is missing.
        """
        row = _encode(fields)
        row.setdefault("id", new_run_id())
        row.setdefault("created_at", time.time())
        row.setdefault("spec", "{}")
        try:
            with self.write() as conn:
                row["updated_at"] = update_time(conn)
                conn.execute(f"INSERT INTO sweeps ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             list(row.values()))
        except sqlite3.IntegrityError as exc:
            if "sweeps.name" in str(exc):
                raise InvalidValue(f"a sweep named {row['name']!r} already exists") from exc
            raise InvalidValue(f"cannot add sweep: {exc}") from exc
        sweep = self.get_sweep(row["id"])
        assert sweep is not None
        return sweep

    def update_sweep(self, sweep_id: str, **fields: Any) -> None:
        """Change columns of a sweep; ``updated_at`` moves forward.

        Raises:
            UnknownField: A field is not a column.
            SweepNotFound: No sweep has this id.
        """
        values = _encode(fields)
        values.pop("id", None)
        with self.write() as conn:
            values["updated_at"] = update_time(conn)
            cursor = conn.execute(f"UPDATE sweeps SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
                                  [*values.values(), sweep_id])
            if cursor.rowcount == 0:
                raise SweepNotFound(sweep_id)

    def get_sweep(self, sweep_id: str) -> Sweep | None:
        """One sweep by its exact id, or None."""
        with self._lock:
            found = _sweeps(self._conn.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)))
        return found[0] if found else None

    def resolve_sweep(self, ref: str) -> Sweep:
        """The sweep a user means: an id, a name, or a unique prefix of an id.

        As with runs, a reference that is one sweep's name and another's id prefix is
        refused rather than guessed.

        Raises:
            SweepNotFound: Nothing matches.
            AmbiguousSweep: Several sweeps match.
        """
        ref = ref.strip()
        if not ref:
            raise SweepNotFound(ref)
        lowered = ref.lower()
        with self._read() as conn:
            by_name = _sweeps(conn.execute("SELECT * FROM sweeps WHERE name = ?", (ref,)))
            by_id = _sweeps(conn.execute("SELECT * FROM sweeps WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT 50",
                                         (lowered, lowered + "~")))
        exact = [s for s in by_id if s.id == lowered]
        if exact and not (by_name and by_name[0].id != exact[0].id):
            return exact[0]
        if by_name:
            others = [s.id for s in by_id if s.id != by_name[0].id]
            if others:
                raise AmbiguousSweep(ref, [by_name[0].id, *others])
            return by_name[0]
        if not by_id:
            raise SweepNotFound(ref)
        if len(by_id) > 1:
            raise AmbiguousSweep(ref, [s.id for s in by_id])
        return by_id[0]

    def list_sweeps(self, limit: int | None = None) -> list[Sweep]:
        """Sweeps, newest first."""
        sql, params = "SELECT * FROM sweeps ORDER BY created_at DESC, id DESC", []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            return _sweeps(self._conn.execute(sql, params))

    def runs_of_sweep(self, sweep_id: str) -> list[Run]:
        """The runs that carry ``sweep_id``, oldest first (the order they were made)."""
        from workbench.store._runs import _runs

        with self._lock:
            return _runs(self._conn.execute(
                "SELECT * FROM runs WHERE sweep_id = ? ORDER BY created_at, id", (sweep_id,)))

    def sweep_status_counts(self, sweep_id: str) -> dict[str, int]:
        """``{status: count}`` of a sweep's runs."""
        with self._lock:
            rows = self._conn.execute("SELECT status, count(*) FROM runs WHERE sweep_id = ? GROUP BY status",
                                      (sweep_id,)).fetchall()
        return {status: int(count) for status, count in rows}

    def delete_sweep(self, sweep_id: str) -> bool:
        """Delete a sweep's row (its runs are left; ``workbench rm`` removes runs)."""
        with self.write() as conn:
            return conn.execute("DELETE FROM sweeps WHERE id = ?", (sweep_id,)).rowcount > 0
