"""Fixtures for the sweep tests: copies of the quickstart project with a real run index,
real queue runners, supervisors and training processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.projects import clean_env, kill_run_processes, make_project


@pytest.fixture
def project(tmp_path: Path, probe_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git-committed copy of the quickstart project.

    This process's environment becomes the tests' clean one (no user git config, one
    thread per training process), so the queue runners the in-process CLI starts inherit
    it. Teardown kills the queue runner first (so it starts nothing more), then the
    processes of every run.
    """
    root = make_project(tmp_path, probe_cache)
    for name, value in clean_env(tmp_path).items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    for name in set(os.environ) - set(clean_env(tmp_path)):
        monkeypatch.delenv(name)
    yield root
    _kill_queue_runner(root)
    kill_run_processes(root)


def _kill_queue_runner(root: Path) -> None:
    """SIGKILL the project's queue runner: the pid in its lock file, only while it holds it."""
    from workbench.runs.queue import queue_runner_alive

    state = root / ".workbench"
    if not queue_runner_alive(state):
        return
    try:
        pid = int((state / "queue.lock").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
