"""Fixtures for the run-process tests: copies of the quickstart project with a real run
index, and a teardown that ends whatever processes a test's runs left behind."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from runs_helpers import end_cli, kill_run_processes, make_project


@pytest.fixture
def cli_procs() -> Iterator[list]:
    """CLI subprocesses a test starts (``wb_start``); killed at teardown if still running."""
    procs: list = []
    yield procs
    end_cli(procs)


@pytest.fixture
def project(tmp_path: Path, probe_cache: Path) -> Iterator[Path]:
    """A fresh git-committed copy of the quickstart project; its runs' processes are
    killed at teardown (by the pids in its index)."""
    root = make_project(tmp_path, probe_cache)
    yield root
    kill_run_processes(root)


@pytest.fixture(scope="module")
def module_project(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path,
                   request: pytest.FixtureRequest) -> Iterator[Path]:
    """One project for a whole test module (its runs start once, several tests look at
    them); a module may add task files through a ``PROJECT_FILES`` dict."""
    extra = getattr(request.module, "PROJECT_FILES", {})
    base = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    root = make_project(base, probe_cache, extra)
    yield root
    kill_run_processes(root)
    shutil.rmtree(base, ignore_errors=True)
