"""Helpers for the tests that start real run processes (imported by tests/runs/conftest.py).

Every run here is a real supervisor and real training processes writing to a real SQLite
file in a copy of the quickstart project. Nothing is signalled by process name: the
processes of a test's runs are found by the pids recorded in its index.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import psutil
from click.testing import CliRunner, Result

from workbench.store import RunIndex

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "sample_projects" / "quickstart"

#: Seconds a test waits for something a run does before giving up (not a speed claim:
#: the machines that run the tests are shared and can be very slow).
PATIENCE = 240.0

CLI = [sys.executable, "-m", "workbench.cli"]

#: A task whose training step fails (for the ``failed`` outcome).
BROKEN_TASK = '''"""A task whose training step fails."""

from sine import SineRegression


class Broken(SineRegression):
    """SineRegression whose first training step raises."""

    def training_step(self, batch, batch_idx):
        raise RuntimeError(f"boom in batch {batch_idx}")
'''

#: A task that prints which version of its code runs (for the code-snapshot test).
CHATTY_TASK = '''"""A task that says which version of its code runs."""

from sine import SineRegression


class Chatty(SineRegression):
    """SineRegression that prints a marker when it builds its model."""

    def build_model(self):
        print("chatty code version: original", flush=True)
        return super().build_model()
'''


#: A task that trains for as long as a test needs while using almost no CPU (the machines
#: that run the tests may have two cores; three busy long runs would starve everything else).
SLOW_TASK = '''"""A task whose steps take a while but cost almost no CPU."""

import time

from sine import SineRegression


class Slow(SineRegression):
    """SineRegression that sleeps a little in every training step."""

    def training_step(self, batch, batch_idx):
        time.sleep(0.05)
        return super().training_step(batch, batch_idx)
'''


def git_env(base: Path) -> dict[str, str]:
    """Environment for git and for every process a test starts: no user or system git
    config, no repository above ``base``, one intra-op thread per training process."""
    env = dict(os.environ)
    env.update({
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": str(base),
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
        "OMP_NUM_THREADS": "1",
    })
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "WORKBENCH_STALE_AFTER"):
        env.pop(name, None)
    return env


def make_project(dest: Path, probe_cache: Path | None, extra: dict[str, str] | None = None,
                 git: bool = True) -> Path:
    """Copy the quickstart project to ``dest/quickstart``; optionally add task files and
    commit everything to a fresh git repository.

    ``probe_cache`` is a ``devices.json`` written once per session by the real device probe;
    it is copied in so that each project does not pay for its own probe (a torch import).
    """
    root = dest / "quickstart"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".workbench", "__pycache__"))
    for rel, text in (extra or {}).items():
        (root / rel).write_text(text)
    if probe_cache is not None:
        (root / ".workbench").mkdir()
        shutil.copy(probe_cache, root / ".workbench" / "devices.json")
    if git:
        env = git_env(dest)
        (root / ".gitignore").write_text(".workbench/\n__pycache__/\n")
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "quickstart"]):
            subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def wb(project: Path, *args: str, env: dict[str, str] | None = None,
       timeout: float = PATIENCE) -> subprocess.CompletedProcess[str]:
    """Run ``workbench ARGS`` as a subprocess in ``project``."""
    return subprocess.run([*CLI, *args], cwd=project, env=env or git_env(project.parent),
                          capture_output=True, text=True, timeout=timeout)


def invoke(project: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``workbench --project PROJECT ARGS`` in this process (click's CliRunner): for
    what a command prints and its exit status, without a Python start-up per call."""
    from workbench.cli import cli

    result = CliRunner().invoke(cli, ["--project", str(project), *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def wb_start(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``workbench ARGS`` as a subprocess in ``project``; the caller waits for it."""
    return subprocess.Popen([*CLI, *args], cwd=project, env=env or git_env(project.parent),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def launch(project: Path, *args: str) -> dict[str, Any]:
    """``workbench run ARGS --json`` (no waiting); returns the new run's record."""
    result = wb(project, "run", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def index_of(project: Path) -> RunIndex:
    """The project's run index (the real file)."""
    return RunIndex(project / ".workbench" / "index.db")


def run_row(project: Path, run_id: str) -> dict[str, Any]:
    """The run's row, read now."""
    with index_of(project) as index:
        row = index.get_run(run_id)
    assert row is not None, f"run {run_id} is not in the index"
    return row


def poll(what: Callable[[], Any], message: str, timeout: float = PATIENCE, every: float = 0.2) -> Any:
    """Call ``what`` until it returns something true; return that, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {message}")
        time.sleep(every)


def wait_ended(project: Path, run_ids: Iterable[str], timeout: float = PATIENCE) -> dict[str, dict[str, Any]]:
    """Wait until every run has left ``queued``/``running``; return their rows by id."""
    ids = list(run_ids)

    def ended() -> dict[str, dict[str, Any]] | None:
        with index_of(project) as index:
            rows = {i: index.get_run(i) for i in ids}
        done = all(r is not None and r.status not in ("queued", "running") for r in rows.values())
        return rows if done else None  # type: ignore[return-value]

    return poll(ended, f"runs {ids} to end", timeout)


def wait_training(project: Path, run_id: str, min_step: int = 1) -> dict[str, Any]:
    """Wait until the run is ``running`` and has reported step ``min_step`` or later."""
    def going() -> dict[str, Any] | None:
        row = run_row(project, run_id)
        assert row.status in ("queued", "running"), f"run ended early: {row.status} {row.error}"
        return row if row.status == "running" and (row.step or 0) >= min_step else None

    return poll(going, f"run {run_id} to reach step {min_step}")


def train_loss_steps(project: Path, run_id: str) -> list[int]:
    """The steps of the run's ``train/loss`` points, in order."""
    with index_of(project) as index:
        return [step for step, _, _ in index.points(run_id, "train/loss")]


def pid_gone(pid: int, timeout: float = 30.0) -> bool:
    """Wait until the process ``pid`` has exited (reaped or a zombie)."""
    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return bool(poll(gone, f"process {pid} to exit", timeout, every=0.05))


def _processes_of(row: dict[str, Any]) -> list[psutil.Process]:
    """The live processes of a run: its supervisor and training pids from the index and
    their descendants, kept only if their command line names the run's id."""
    found: dict[int, psutil.Process] = {}
    for pid in (row.supervisor_pid, row.pid):
        if not pid:
            continue
        try:
            proc = psutil.Process(int(pid))
            if row.id not in " ".join(proc.cmdline()):
                continue  # the pid was reused by something else
            found[proc.pid] = proc
            for child in proc.children(recursive=True):
                found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return list(found.values())


def kill_run_processes(project: Path) -> list[int]:
    """SIGKILL every process of every run in ``project`` that is still alive; return pids."""
    path = project / ".workbench" / "index.db"
    if not path.is_file():
        return []
    with RunIndex(path) as index:
        rows = index.list_runs()
    procs = [p for row in rows for p in _processes_of(row)]
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)
    return [p.pid for p in procs]


def end_cli(procs: Iterable[subprocess.Popen[str]]) -> None:
    """Kill CLI subprocesses a test started and did not wait for."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        try:
            proc.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            pass
