"""Fixtures for the CLI tests: a copy of the quickstart project with runs in its real index
(made through ``launch(..., start=False)``: real rows, run folders and snapshot refs, but no
processes), and click's CliRunner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import copy_quickstart


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user git config, no repository above the test's folder, the default window."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "WORKBENCH_STALE_AFTER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path, probe_cache: Path) -> Iterator[Path]:
    """A copy of the quickstart project (not a git repository: snapshots go to workbench's
    private repository in ``.workbench/git``)."""
    yield copy_quickstart(tmp_path, probe_cache)
