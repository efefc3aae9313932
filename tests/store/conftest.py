"""Fixtures of the run index tests: a real SQLite file in tmp_path, or an in-memory index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.store import RunIndex


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a project's index lives, inside a fresh temporary project."""
    return tmp_path / ".workbench" / "index.db"


@pytest.fixture
def index(db_path: Path) -> Iterator[RunIndex]:
    """A run index on a real file, closed after the test."""
    with RunIndex(db_path) as opened:
        yield opened


@pytest.fixture
def memory_index() -> Iterator[RunIndex]:
    """An in-memory run index."""
    with RunIndex(memory=True) as opened:
        yield opened
