"""Fixtures for the journal tests: copies of the quickstart project with a real run index
(for the runs launched in journal mode), and a teardown that ends their processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.projects import kill_run_processes, make_project

sys.path.insert(0, str(Path(__file__).resolve().parent))  # journal_helpers


@pytest.fixture
def project(tmp_path: Path, probe_cache: Path) -> Iterator[Path]:
    """A fresh git-committed copy of the quickstart project; its runs' processes are killed
    at teardown (by the pids in its index)."""
    root = make_project(tmp_path, probe_cache)
    yield root
    kill_run_processes(root)
