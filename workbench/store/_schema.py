"""The run index's tables, as ordered migrations.

Never edit a migration that has shipped: add the next one. Each runs inside its own
``BEGIN IMMEDIATE`` transaction together with its ``schema_version`` record.
"""

from __future__ import annotations

import sqlite3

from workbench.store._db import Migrations
from workbench.store.records import RunStatus

__all__ = ["MIGRATIONS", "RUN_COLUMNS", "SCHEMA_VERSION", "STATUSES"]

MIGRATIONS = Migrations()

#: Every status a run can have (see :class:`~workbench.store.records.RunStatus`).
STATUSES = tuple(status.value for status in RunStatus)

# The columns of ``runs`` as schema 1 created them. Frozen: migration 1 has shipped.
_V1_STATUSES = ("queued", "running", "completed", "failed", "stopped", "interrupted")
_V1_COLUMNS: dict[str, str] = {
    "id": "TEXT PRIMARY KEY",
    "name": "TEXT UNIQUE",
    "task": "TEXT",
    "status": "TEXT NOT NULL DEFAULT 'queued'",
    "created_at": "REAL NOT NULL",
    "started_at": "REAL",
    "ended_at": "REAL",
    "heartbeat_at": "REAL",
    "updated_at": "REAL NOT NULL",
    "supervisor_pid": "INTEGER",
    "supervisor_create_time": "REAL",
    "pid": "INTEGER",
    "pgid": "INTEGER",
    "host": "TEXT",
    "device": "TEXT",
    "backend": "TEXT",
    "nproc": "INTEGER",
    "precision": "TEXT",
    "config": "TEXT",
    "tags": "TEXT",
    "profile": "TEXT",
    "run_dir": "TEXT",
    "git_head": "TEXT",
    "git_branch": "TEXT",
    "git_dirty": "INTEGER",
    "snapshot_commit": "TEXT",
    "parent_id": "TEXT",
    "parent_checkpoint": "TEXT",
    "attempt": "INTEGER NOT NULL DEFAULT 1",
    "step": "INTEGER",
    "total_steps": "INTEGER",
    "epoch": "INTEGER",
    "exit_code": "INTEGER",
    "signal": "INTEGER",
    "error": "TEXT",
    "traceback": "TEXT",
}

# Schema 2 (frozen): why a run is in its status (``queued``: waiting for what; a final
# status: the outcome's reason), and the stop request that the run's owner delivers.
_V2_COLUMNS: dict[str, str] = {
    **_V1_COLUMNS,
    "status_reason": "TEXT",
    "stop_requested_at": "REAL",
    "stop_mode": "TEXT",
    "stop_reason": "TEXT",
}
_V2_STATUSES = (*_V1_STATUSES, "pruned")

#: The columns of ``runs``, in table order, with their SQL types.
RUN_COLUMNS: dict[str, str] = {
    **_V2_COLUMNS,
    # Schema 3: how the run came in (task, script, attached) and, for a script or an
    # attached process, its command line (JSON list; secrets masked).
    "kind": "TEXT NOT NULL DEFAULT 'task'",
    "command": "TEXT",
    # Schema 4: the ``-s KEY=VALUE`` overrides as given (JSON object); an evaluation's
    # eval-time overrides.
    "overrides": "TEXT",
    # Schema 5: the sweep a run belongs to, its place in the queue (higher priority first,
    # then FIFO by queued_at) and the device the queue gave it (``cuda:1``).
    "sweep_id": "TEXT",
    "priority": "INTEGER NOT NULL DEFAULT 0",
    "queued_at": "REAL",
    "assigned_device": "TEXT",
}

# One row per summary block of a series; see workbench/store/_rollup.py.
_ROLLUP_COLUMNS = (
    "run_id TEXT NOT NULL, key TEXT NOT NULL, level INTEGER NOT NULL, block INTEGER NOT NULL,"
    " n INTEGER NOT NULL, last_step INTEGER NOT NULL, last_value REAL, last_time REAL,"
    " min_step INTEGER, min_value REAL, min_time REAL,"
    " max_step INTEGER, max_value REAL, max_time REAL,"
    " PRIMARY KEY (run_id, key, level, block)"
)


@MIGRATIONS(1)
def initial(conn: sqlite3.Connection) -> None:
    """Create runs, metrics, metrics_aside, metrics_rollup, events and artifacts."""
    columns = ", ".join(f"{name} {kind}" for name, kind in _V1_COLUMNS.items())
    statuses = ", ".join(f"'{status}'" for status in _V1_STATUSES)
    conn.execute(f"CREATE TABLE runs ({columns}, CHECK (status IN ({statuses})))")
    conn.execute("CREATE INDEX runs_updated_at ON runs (updated_at)")
    conn.execute("CREATE INDEX runs_status ON runs (status)")
    conn.execute("CREATE INDEX runs_task ON runs (task)")
    conn.execute("CREATE INDEX runs_created_at ON runs (created_at)")
    # WITHOUT ROWID: the primary key is the table, so a series is stored contiguously.
    conn.execute(
        "CREATE TABLE metrics (run_id TEXT NOT NULL, key TEXT NOT NULL,"
        " step INTEGER NOT NULL, value REAL, wall_time REAL,"
        " attempt INTEGER NOT NULL DEFAULT 1,"
        " PRIMARY KEY (run_id, key, step)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE metrics_aside (run_id TEXT NOT NULL, key TEXT NOT NULL,"
        " step INTEGER NOT NULL, value REAL, wall_time REAL,"
        " attempt INTEGER NOT NULL, set_aside_at REAL NOT NULL,"
        " PRIMARY KEY (run_id, key, attempt, step)) WITHOUT ROWID"
    )
    conn.execute(f"CREATE TABLE metrics_rollup ({_ROLLUP_COLUMNS}) WITHOUT ROWID")
    conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL,"
        " time REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',"
        " data TEXT)"
    )
    conn.execute("CREATE INDEX events_run ON events (run_id, time)")
    conn.execute(
        "CREATE TABLE artifacts (run_id TEXT NOT NULL, path TEXT NOT NULL,"
        " size INTEGER, kind TEXT, created_at REAL, UNIQUE (run_id, path))"
    )


_RUN_INDEXES = (
    "CREATE INDEX runs_updated_at ON runs (updated_at)",
    "CREATE INDEX runs_status ON runs (status)",
    "CREATE INDEX runs_task ON runs (task)",
    "CREATE INDEX runs_created_at ON runs (created_at)",
)


@MIGRATIONS(2)
def stop_requests_and_pruned(conn: sqlite3.Connection) -> None:
    """Add the stop request and status reason columns; allow the ``pruned`` status.

    SQLite cannot change a CHECK constraint in place, so ``runs`` is rebuilt (inside the
    migration's transaction: all or nothing).
    """
    columns = ", ".join(f"{name} {kind}" for name, kind in _V2_COLUMNS.items())
    statuses = ", ".join(f"'{status}'" for status in _V2_STATUSES)
    old = ", ".join(_V1_COLUMNS)
    conn.execute(f"CREATE TABLE runs_v2 ({columns}, CHECK (status IN ({statuses})))")
    conn.execute(f"INSERT INTO runs_v2 ({old}) SELECT {old} FROM runs")
    conn.execute("DROP TABLE runs")
    conn.execute("ALTER TABLE runs_v2 RENAME TO runs")
    for statement in _RUN_INDEXES:
        conn.execute(statement)


@MIGRATIONS(3)
def run_kind_and_command(conn: sqlite3.Connection) -> None:
    """Add ``kind`` (task, script, attached) and ``command`` to ``runs``."""
    conn.execute("ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'task'")
    conn.execute("ALTER TABLE runs ADD COLUMN command TEXT")


@MIGRATIONS(4)
def steps_and_evaluations(conn: sqlite3.Connection) -> None:
    """Add ``run_steps`` (a pipeline's atomic steps), ``runs.overrides`` and an index on
    ``parent_id`` (a run's evaluations and forks)."""
    conn.execute("ALTER TABLE runs ADD COLUMN overrides TEXT")
    conn.execute("CREATE INDEX runs_parent ON runs (parent_id)")
    conn.execute(
        "CREATE TABLE run_steps (run_id TEXT NOT NULL, position INTEGER NOT NULL,"
        " name TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',"
        " attempt INTEGER, started_at REAL, ended_at REAL, error TEXT,"
        " PRIMARY KEY (run_id, position)) WITHOUT ROWID"
    )


@MIGRATIONS(5)
def queue_and_sweeps(conn: sqlite3.Connection) -> None:
    """Add the queue's columns and the sweep a run belongs to; create ``sweeps``."""
    conn.execute("ALTER TABLE runs ADD COLUMN sweep_id TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE runs ADD COLUMN queued_at REAL")
    conn.execute("ALTER TABLE runs ADD COLUMN assigned_device TEXT")
    conn.execute("CREATE INDEX runs_sweep ON runs (sweep_id)")
    conn.execute("CREATE INDEX runs_queue ON runs (status, priority, queued_at)")
    conn.execute(
        "CREATE TABLE sweeps (id TEXT PRIMARY KEY, name TEXT UNIQUE, task TEXT NOT NULL,"
        " kind TEXT NOT NULL, spec TEXT NOT NULL, parallel INTEGER, metric TEXT, direction TEXT,"
        " snapshot_commit TEXT, status TEXT NOT NULL DEFAULT 'running', created_at REAL NOT NULL,"
        " updated_at REAL NOT NULL)"
    )


#: The newest schema version this code knows.
SCHEMA_VERSION = MIGRATIONS.known
