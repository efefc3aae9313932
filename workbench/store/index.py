"""The run index: one SQLite file that every workbench process reads and writes.

See ``docs/run-index.md`` for the tables. A :class:`RunIndex` owns one connection; its
methods may be called from several threads (they take turns on a lock). Each process opens
its own: a connection must not cross a ``fork``. The methods are grouped by table in
``_runs.py``, ``_metrics.py`` and ``_events.py``; this module holds the connection and
its transactions.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from workbench.store._db import connect, enable_wal, immediate
from workbench.store._events import EventsTable
from workbench.store._metrics import MetricsTable
from workbench.store._queue import QueueTable
from workbench.store._runs import RunsTable
from workbench.store._steps import StepsTable
from workbench.store._sweeps import SweepsTable
from workbench.store._schema import MIGRATIONS
from workbench.store.errors import StoreError, damaged_index_advice

__all__ = ["RunIndex", "open_index"]


class RunIndex(RunsTable, MetricsTable, EventsTable, StepsTable, QueueTable, SweepsTable):
    """The run index of one project (``<project>/.workbench/index.db``).

    Opening applies pending migrations; a file written by a newer workbench is refused
    and left as it was.

    Args:
        path: The database file; its folder is made if missing.
        memory: Use a private in-memory database instead (for tests).

    Raises:
        SchemaTooNew: The file was written by a newer workbench.
        StoreError: The file is not a SQLite database.

    Example:
        >>> index = RunIndex(memory=True)
        >>> run = index.create_run(task="mnist", config={"lr": 0.1})
        >>> index.resolve_run(run.id[:6]).task
        'mnist'
    """

    def __init__(self, path: str | Path | None = None, *, memory: bool = False) -> None:
        if (path is None) != memory:
            raise ValueError("give RunIndex a path, or memory=True")
        self.path: Path | None = None if memory else Path(path)  # type: ignore[arg-type]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = open_index(self.path)

    # -- connection and transactions ------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection (autocommit mode; wrap writes in :meth:`write`)."""
        return self._conn

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._lock:
            return MIGRATIONS.current(self._conn)

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """Group writes in one ``BEGIN IMMEDIATE`` transaction.

        The block commits when it ends and rolls back if it raises. Index methods called
        inside join the transaction, so several changes appear to readers at once.

        Yields:
            The connection, for statements of your own (always parameterised).
        """
        with self._lock, immediate(self._conn) as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one snapshot (joins a write transaction if open)."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection. The index cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_index(path: Path | None) -> sqlite3.Connection:
    """Open (or create) an index database and bring its schema up to date.

    Args:
        path: The file, or ``None`` for an in-memory database.

    Returns:
        The connection.

    Raises:
        SchemaTooNew: The file was written by a newer workbench (nothing is written).
        StoreError: The file is not a SQLite database.
    """
    shown = str(path) if path is not None else ":memory:"
    conn = None
    try:
        conn = connect(path)
        MIGRATIONS.check(conn, shown)  # before anything writes to the file
        if path is not None:
            enable_wal(conn)
        if MIGRATIONS.pending(conn):
            MIGRATIONS.apply(conn, shown)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot open the run index {shown}: {exc}; {damaged_index_advice(shown)}") from exc
        raise
    return conn

