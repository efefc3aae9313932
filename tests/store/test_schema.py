"""Opening the index: migrations, re-opening, refusing a newer schema."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from workbench.store import MIGRATIONS, SCHEMA_VERSION, RunIndex, SchemaTooNew, StoreError
from workbench.store._db import Migrations, connect

from . import _workers

EXPECTED_TABLES = {
    "runs", "metrics", "metrics_aside", "metrics_rollup", "events", "artifacts", "run_steps", "sweeps",
    "schema_version",
}


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fresh_index_has_every_table_in_wal_mode(index: RunIndex, db_path: Path) -> None:
    assert EXPECTED_TABLES <= _tables(index.connection)
    assert index.schema_version == SCHEMA_VERSION
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_applies_nothing_and_keeps_data(db_path: Path) -> None:
    with RunIndex(db_path) as index:
        run = index.create_run(task="t")
    with RunIndex(db_path) as index:
        rows = index.connection.execute("SELECT version FROM schema_version").fetchall()
        assert [row[0] for row in rows] == list(range(1, SCHEMA_VERSION + 1))
        assert index.get_run(run.id) is not None
        assert MIGRATIONS.pending(index.connection) == []


def test_pending_reads_without_applying(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = connect(db_path)
    assert [step.version for step in MIGRATIONS.pending(conn)] == list(range(1, SCHEMA_VERSION + 1))
    assert _tables(conn) == set()
    conn.close()


def test_newer_schema_is_refused_and_file_left_untouched(db_path: Path) -> None:
    with RunIndex(db_path) as index, index.write() as conn:
        conn.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (SCHEMA_VERSION + 6, "from_the_future", 0.0),
        )
    before = _digest(db_path)
    with pytest.raises(SchemaTooNew) as caught:
        RunIndex(db_path)
    assert str(caught.value) == (
        f"index.db was written by a newer workbench (schema {SCHEMA_VERSION + 6},"
        f" this one knows {SCHEMA_VERSION}); upgrade workbench"
    )
    assert _digest(db_path) == before


def test_non_database_file_is_a_one_line_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the run index"):
        RunIndex(db_path)


def test_failed_migration_rolls_back_with_its_record(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    steps = Migrations()

    @steps(1)
    def create(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE a (x)")

    @steps(2)
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE b (x)")
        raise RuntimeError("half done")

    conn = connect(db_path)
    with pytest.raises(RuntimeError):
        steps.apply(conn)
    assert steps.current(conn) == 1
    assert "a" in _tables(conn) and "b" not in _tables(conn)
    assert [step.name for step in steps.pending(conn)] == ["broken"]
    conn.close()


def test_migrations_must_be_registered_in_order() -> None:
    steps = Migrations()
    with pytest.raises(ValueError, match="expected"):
        steps(2)(lambda conn: None)


def test_processes_opening_a_new_index_together_migrate_it_once(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_workers.open_index, args=(str(db_path), start, results))
        for _ in range(6)
    ]
    for worker in workers:
        worker.start()
    start.set()
    errors = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert errors == [None] * len(workers)
    with RunIndex(db_path) as index:
        assert index.connection.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert len(index.list_runs(task="race")) == len(workers)


def test_a_schema_1_index_is_migrated_with_its_runs_and_allows_pruned(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = connect(db_path)
    old = Migrations()
    old(1)(MIGRATIONS._steps[0].fn)  # exactly what the first wave shipped
    old.apply(conn)
    conn.execute(
        "INSERT INTO runs (id, name, task, status, created_at, updated_at, config, tags)"
        " VALUES ('r1', 'kept', 't', 'stopped', 1.0, 1.0, '{\"lr\": 0.1}', '[\"a\"]')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE runs SET status = 'pruned' WHERE id = 'r1'")
    conn.close()
    with RunIndex(db_path) as index:
        run = index.get_run("r1")
        assert run is not None and run.name == "kept" and run.config == {"lr": 0.1} and run.tags == ("a",)
        index.update_run("r1", status="pruned")
        assert index.get_run("r1").status.value == "pruned"
        assert index.get_run("r1").stop_requested_at is None
