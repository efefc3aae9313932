"""A damaged or read-only index: every command says so in one line (exit 2), never a
traceback, and a launch refused that way leaves no run folder and no snapshot ref."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_commands import _make_runs

from workbench.snapshot import list_refs

COMMANDS = [
    ("ls", "--json"),
    ("ls",),
    ("show", "first"),
    ("metrics", "first"),
    ("run", "SineRegression", "-s", "epochs=1"),
]


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k.startswith("GIT_CONFIG")}
    return subprocess.run([sys.executable, "-m", "workbench.cli", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def _corrupt_pages(db: Path) -> None:
    """Overwrite everything after the first page (the schema stays readable)."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"\xde\xad\xbe\xef" * ((size - 4096) // 4))


def _state(project: Path) -> tuple[list[str], dict[str, str]]:
    runs = project / ".workbench" / "runs"
    folders = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
    return folders, list_refs(project, state_dir=project / ".workbench")


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_page_corrupted_index_is_one_line(project: Path, args: tuple[str, ...]) -> None:
    _make_runs(project)
    _corrupt_pages(project / ".workbench" / "index.db")
    before = _state(project)

    result = _cli(project, *args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "index.db" in result.stderr and ("recover" in result.stderr or "rebuild" in result.stderr)
    assert _state(project) == before  # a refused launch left no folder and no ref


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
def test_a_read_only_index_refuses_a_launch_in_one_line(project: Path) -> None:
    _make_runs(project)
    db = project / ".workbench" / "index.db"
    db.chmod(stat.S_IRUSR)
    try:
        before = _state(project)
        result = _cli(project, "run", "SineRegression", "-s", "epochs=1")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert _state(project) == before
    finally:
        db.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_an_index_that_cannot_be_written_refuses_a_launch_and_cleans_up(project: Path) -> None:
    """As root a read-only file is still writable: a trigger that refuses inserts stands in
    for an index that refuses writes (disk full, immutable file, a broken page)."""
    _make_runs(project)
    db = project / ".workbench" / "index.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON runs BEGIN"
                     " SELECT RAISE(ABORT, 'attempt to write a readonly database'); END")
    before = _state(project)

    result = _cli(project, "run", "SineRegression", "-s", "epochs=1")

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert _state(project) == before
