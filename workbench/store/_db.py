"""Connections, transactions and the ordered migrations of the run index.

Migrations are modelled on sqlite-utils' ``Migrations`` (registered by decorator, each
applied atomically together with its record, ``pending()`` readable without applying),
with two differences that the run index needs: each migration has a version number, so a
file written by a newer workbench is recognised and refused, and the pending list is read
again *inside* the ``BEGIN IMMEDIATE`` transaction, so that several processes opening a
new index at the same moment apply each migration exactly once.

Why not sqlite-utils here: the writer and the app's polling reads are hot paths, measured
(``benchmarks/ingest.py``, ``benchmarks/series_query.py``) with raw ``sqlite3``; the
migrations need the newer-schema refusal and ``BEGIN IMMEDIATE`` that sqlite-utils'
``Migrations`` does not give; and importing sqlite-utils pulls in numpy, about 0.25 s of
start-up for every CLI command. sqlite-utils serves what users do with the index outside
the app instead: ``workbench export --format sqlite`` and the queries in
``docs/run-index.md``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.store.errors import SchemaTooNew

__all__ = [
    "BUSY_TIMEOUT_S",
    "Migration",
    "Migrations",
    "connect",
    "enable_wal",
    "immediate",
    "update_time",
]

#: How long a writer waits for another writer's transaction before giving up.
BUSY_TIMEOUT_S = 30.0

MigrationFunction = Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class Migration:
    """One step of the schema.

    Attributes:
        version: The schema version the database has once this step is applied.
        name: A short description (the function's name by default).
        fn: Called with the connection, inside the migration's transaction.
    """

    version: int
    name: str
    fn: MigrationFunction


class Migrations:
    """An ordered set of schema migrations recorded in a ``schema_version`` table."""

    table = "schema_version"

    def __init__(self) -> None:
        """Make an empty set; register steps with the instance as a decorator."""
        self._steps: list[Migration] = []

    def __call__(self, version: int, name: str | None = None) -> Callable[[MigrationFunction], MigrationFunction]:
        """Register a migration.

        Args:
            version: Its version: one more than the previous registered step.
            name: Its name; the function's name when omitted.

        Returns:
            A decorator that registers the function and returns it unchanged.

        Raises:
            ValueError: The version does not follow the last registered one.
        """

        def register(fn: MigrationFunction) -> MigrationFunction:
            expected = self.known + 1
            if version != expected:
                raise ValueError(f"migration {version} registered where {expected} was expected")
            self._steps.append(Migration(version, name or fn.__name__, fn))
            return fn

        return register

    @property
    def known(self) -> int:
        """The newest schema version these migrations reach (0 when there are none)."""
        return self._steps[-1].version if self._steps else 0

    def current(self, conn: sqlite3.Connection) -> int:
        """Read the database's schema version without writing anything.

        Args:
            conn: An open connection.

        Returns:
            The highest applied version, or 0 for a database without the table.
        """
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.table,)
        ).fetchone()
        if not exists:
            return 0
        (version,) = conn.execute(f"SELECT coalesce(max(version), 0) FROM {self.table}").fetchone()
        return int(version)

    def pending(self, conn: sqlite3.Connection) -> list[Migration]:
        """List the migrations not yet applied, without applying them.

        Args:
            conn: An open connection.

        Returns:
            The steps newer than the database's version, in order.
        """
        current = self.current(conn)
        return [step for step in self._steps if step.version > current]

    def check(self, conn: sqlite3.Connection, path: str) -> None:
        """Refuse a database written by a newer schema.

        Args:
            conn: An open connection.
            path: The file's path, for the error.

        Raises:
            SchemaTooNew: The database's version is newer than :attr:`known`.
        """
        current = self.current(conn)
        if current > self.known:
            raise SchemaTooNew(path, current, self.known)

    def apply(self, conn: sqlite3.Connection, path: str = "index.db") -> list[int]:
        """Apply every pending migration, each in its own ``BEGIN IMMEDIATE`` transaction.

        Args:
            conn: A connection in autocommit mode (``isolation_level=None``).
            path: The file's path, for errors.

        Returns:
            The versions this call applied (another process may have applied the rest).

        Raises:
            SchemaTooNew: The database's version is newer than this code knows.
        """
        applied: list[int] = []
        for step in self._steps:
            with immediate(conn):
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at REAL NOT NULL)"
                )
                current = self.current(conn)
                if current > self.known:
                    raise SchemaTooNew(path, current, self.known)
                if current >= step.version:
                    continue
                step.fn(conn)
                conn.execute(
                    f"INSERT INTO {self.table} (version, name, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.name, time.time()),
                )
                applied.append(step.version)
        return applied


def connect(path: str | Path | None) -> sqlite3.Connection:
    """Open a connection with the index's settings, without writing to the file.

    The connection is in autocommit mode (transactions are explicit), has a
    ``busy_timeout`` and ``synchronous=NORMAL``, and may be used from another thread
    than the one that opened it (callers serialise their own use).

    Args:
        path: The database file, or ``None`` for a private in-memory database.

    Returns:
        The connection.
    """
    target = ":memory:" if path is None else str(path)
    conn = sqlite3.connect(
        target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def enable_wal(conn: sqlite3.Connection) -> None:
    """Switch a file database to WAL mode (persistent; a no-op when it already is).

    Args:
        conn: A connection to a file database, outside any transaction.
    """
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    if str(mode).lower() == "wal":
        return
    # Changing the journal mode needs the file to itself; when several processes open a
    # new index together it can report "locked" at once instead of waiting.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in a ``BEGIN IMMEDIATE`` transaction: commit on success, else roll back.

    ``IMMEDIATE`` takes the write lock at the start, waiting up to the busy timeout; a
    deferred transaction that reads and then writes would fail at once with "database is
    locked" instead. When a transaction is already open the block joins it.

    Args:
        conn: A connection in autocommit mode.

    Yields:
        The connection.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def update_time(conn: sqlite3.Connection) -> float:
    """The ``updated_at`` for a change to ``runs``, strictly later than every earlier one.

    Call it inside the write transaction: transactions are serialised, so values come out
    in commit order and a reader that asks for "changed since the largest value I saw"
    never misses a change.

    Args:
        conn: A connection inside a write transaction.

    Returns:
        ``time.time()``, or just above the largest ``updated_at`` if that is later.
    """
    (latest,) = conn.execute("SELECT max(updated_at) FROM runs").fetchone()
    now = time.time()
    if latest is not None and now <= latest:
        now = latest + 1e-6
    return now
