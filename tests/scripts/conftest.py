"""Fixtures of the script-run tests: a copy of the quickstart project with small scripts
(no torch: each starts in a fraction of a second) declared in its ``workbench.toml``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scripts_helpers import PROJECT_FILES
from support.projects import kill_run_processes, make_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A git-committed quickstart copy with the test scripts; their processes are killed at
    teardown (by the pids in its index)."""
    root = make_project(tmp_path, None, PROJECT_FILES)
    yield root
    kill_run_processes(root)
