"""Fixtures for the run queue's tests: copies of the quickstart project with a real run
index, real queue runners, supervisors and training processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.projects import clean_env, kill_run_processes, make_project


@pytest.fixture
def project(tmp_path: Path, probe_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A git-committed copy of the quickstart project with ``[queue] max_running = 2``.

    This process's environment becomes the tests' clean one (no user git config, one
    thread per training process), so the queue runners it starts inherit it. Teardown
    kills the processes of its runs and its queue runner.
    """
    root = make_project(tmp_path, probe_cache)
    with (root / "workbench.toml").open("a") as fh:
        fh.write("\n[queue]\nmax_running = 2\n")
    for name, value in clean_env(tmp_path).items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    for name in set(os.environ) - set(clean_env(tmp_path)):
        monkeypatch.delenv(name)
    yield root
    kill_run_processes(root)
    _kill_queue_runner(root)


def _kill_queue_runner(root: Path) -> None:
    """SIGKILL the project's queue runner: the pid in its lock file, only while it holds it."""
    import signal

    from workbench.runs.queue import queue_runner_alive

    state = root / ".workbench"
    if not queue_runner_alive(state):
        return
    import psutil

    try:
        pid = int((state / "queue.lock").read_text().split()[0])
        if pid != os.getpid() and "workbench.runs.queue_runner" in " ".join(psutil.Process(pid).cmdline()):
            os.kill(pid, signal.SIGKILL)  # (the test itself writes its pid there when it holds the lock)
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
