"""Fixtures for the snapshot tests: real, throw-away git repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from snapshot_helpers import git, write


@pytest.fixture(autouse=True)
def hermetic_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keeps the user's and the system's git config out of the tests."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project repository with two commits on branch ``main`` and a .gitignore."""
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root / ".gitignore", "*.log\nbuild/\n.workbench/\n")
    write(root / "tasks" / "train.py", "LR = 0.1\n")
    write(root / "tasks" / "model.py", "WIDTH = 8\n")
    write(root / "README.md", "# project\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    write(root / "tasks" / "util.py", "def f():\n    return 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "second")
    return root
