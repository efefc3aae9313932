"""The ``events`` and ``artifacts`` tables (a RunIndex mixin)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from workbench.store.errors import InvalidValue, UnknownField
from workbench.store.records import RunEvent

if TYPE_CHECKING:
    import contextlib
    import threading

__all__ = ["EventsTable"]

_ARTIFACT_FIELDS = ("path", "size", "kind", "created_at")


def _check_artifact_path(path: str) -> str:
    text = str(path).replace("\\", "/")
    pure = PurePosixPath(text)
    if not text or pure.is_absolute() or ".." in pure.parts or text.startswith("~"):
        raise InvalidValue(f"artifact path {path!r} must be relative to the run folder")
    return str(pure)


class EventsTable:
    """Methods of :class:`~workbench.store.RunIndex` over ``events`` and ``artifacts``."""

    _conn: sqlite3.Connection
    _lock: threading.RLock

    if TYPE_CHECKING:
        def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

    # -- events -----------------------------------------------------------------------

    def add_event(
        self, run_id: str, kind: str, message: str = "", data: Any = None
    ) -> int:
        """Record a lifecycle event (``launched``, ``started``, ``checkpoint``, ...).

        Args:
            run_id: The run.
            kind: The kind of event.
            message: One line for people.
            data: Anything JSON can hold.

        Returns:
            The event's id.
        """
        if not kind:
            raise InvalidValue("an event needs a kind")
        encoded = None if data is None else json.dumps(data)
        with self.write() as conn:
            cursor = conn.execute(
                "INSERT INTO events (run_id, time, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), kind, message, encoded),
            )
            return int(cursor.lastrowid or 0)

    def events(self, run_id: str) -> list[RunEvent]:
        """A run's events in the order they happened.

        Args:
            run_id: The run.

        Returns:
            The events (data decoded).
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, run_id, time, kind, message, data FROM events WHERE run_id = ?"
                " ORDER BY time, id",
                (run_id,),
            ).fetchall()
        return [
            RunEvent(id=i, run_id=r, time=t, kind=k, message=m or "",
                     data=None if d is None else json.loads(d))
            for i, r, t, k, m, d in rows
        ]

    # -- artifacts --------------------------------------------------------------------

    def runs_with_event(self, kind: str, run_ids: Iterable[str] | None = None) -> set[str]:
        """The runs that have at least one event of ``kind`` (one query for a whole listing).

        Args:
            kind: The event kind.
            run_ids: Only among these runs (default: all).
        """
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT run_id FROM events WHERE kind = ?", (kind,)).fetchall()
        found = {run_id for (run_id,) in rows}
        return found if run_ids is None else found & set(run_ids)

    def add_artifacts(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Record files of a run's folder; a path already recorded is updated.

        Args:
            run_id: The run.
            rows: Mappings with ``path`` (relative to the run folder) and optionally
                ``size``, ``kind`` and ``created_at`` (default now).

        Raises:
            UnknownField: A mapping has another key.
            InvalidValue: A path is absolute or leaves the run folder.
        """
        values = []
        for row in rows:
            unknown = sorted(set(row) - set(_ARTIFACT_FIELDS))
            if unknown:
                raise UnknownField(f"artifacts has no column {', '.join(unknown)}")
            values.append((
                run_id, _check_artifact_path(row["path"]), row.get("size"), row.get("kind"),
                row.get("created_at", time.time()),
            ))
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO artifacts (run_id, path, size, kind, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, path) DO UPDATE SET"
                " size = excluded.size, kind = excluded.kind, created_at = excluded.created_at",
                values,
            )

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """A run's recorded files.

        Args:
            run_id: The run.

        Returns:
            Dicts with ``path, size, kind, created_at``, sorted by path.
        """
        with self._lock:
            cursor = self._conn.execute(
                "SELECT path, size, kind, created_at FROM artifacts WHERE run_id = ?"
                " ORDER BY path",
                (run_id,),
            )
            return [dict(zip(_ARTIFACT_FIELDS, row)) for row in cursor.fetchall()]
