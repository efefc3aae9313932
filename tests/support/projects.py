"""Real projects and the processes of their runs, for every test folder that needs them.

A project is a copy of ``sample_projects/quickstart``; its runs are real supervisor and
training processes writing to a real SQLite index. Nothing is signalled by process name:
the processes of a project's runs are found by the pids recorded in its index.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import psutil

from workbench.store import Run, RunIndex

__all__ = [
    "ABORT", "CLI", "PATIENCE", "QUICKSTART", "REPO", "assert_nothing_written", "clean_env", "copy_quickstart",
    "index_of",
    "kill_run_processes", "make_project", "pid_alive", "pids_gone", "poll", "run_row", "wait_ended", "wb",
]

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "sample_projects" / "quickstart"

#: Seconds a test waits for something a run does before giving up: under pytest's own
#: per-test timeout, so that the message says what was awaited. Not a speed claim: the
#: machines that run the tests are shared and can be very slow.
PATIENCE = 240.0

CLI = [sys.executable, "-m", "workbench.cli"]

#: Once set, every :func:`poll` gives up at its next look. It stays set: only a session's
#: teardown sets it (tests/resume's campaign, when threads still wait on runs).
ABORT = threading.Event()

#: Variables of the test's own environment that would leak into a run or into git.
_LEAKY = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "WORKBENCH_STALE_AFTER", "WORKBENCH_ATTEMPT",
          "WORKBENCH_RUN_DIR", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

_AUTHOR = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}

#: A project's first commit has fixed dates, so it is the same commit on every machine (the
#: commits that runs make later keep real dates).
_FIRST_COMMIT_DATES = {"GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def clean_env(base: Path, **extra: str) -> dict[str, str]:
    """The environment of git and of every process a test starts.

    No user or system git config, no repository above ``base``, a fixed git author, one
    intra-op thread per training process, nothing of a run's or a launcher's own
    variables; then ``extra``.
    """
    env = dict(os.environ)
    env.update({
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": str(base),
        "OMP_NUM_THREADS": "1",
        **_AUTHOR,
    })
    for name in _LEAKY:
        env.pop(name, None)
    env.update(extra)
    return env


def copy_quickstart(dest: Path, probe_cache: Path | None = None, extra: dict[str, str] | None = None) -> Path:
    """Copy the quickstart project (without its state folder) to ``dest/quickstart``.

    Args:
        dest: The folder to copy into.
        probe_cache: A ``devices.json`` written once per session by the real device probe,
            copied in so that each project does not pay for its own probe (a torch import).
        extra: Files to add, by path relative to the project.

    Returns:
        The project's root.
    """
    root = dest / "quickstart"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".workbench", "__pycache__"))
    for rel, text in (extra or {}).items():
        (root / rel).write_text(text)
    if probe_cache is not None:
        (root / ".workbench").mkdir()
        shutil.copy(probe_cache, root / ".workbench" / "devices.json")
    return root


def make_project(dest: Path, probe_cache: Path | None = None, extra: dict[str, str] | None = None,
                 git: bool = True) -> Path:
    """:func:`copy_quickstart`, then (with ``git``) everything committed to a new repository
    on branch ``main``, ``.workbench/`` ignored. Returns the project's root."""
    root = copy_quickstart(dest, probe_cache, extra)
    if git:
        env = clean_env(dest, **_FIRST_COMMIT_DATES)
        (root / ".gitignore").write_text(".workbench/\n__pycache__/\n")
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "quickstart"]):
            subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def wb(project: Path, *args: str, env: dict[str, str] | None = None,
       timeout: float = PATIENCE) -> subprocess.CompletedProcess[str]:
    """Run ``workbench ARGS`` as a subprocess in ``project``; return what it did."""
    return subprocess.run([*CLI, *args], cwd=project, env=env or clean_env(project.parent),
                          capture_output=True, text=True, timeout=timeout)


def index_of(project: Path) -> RunIndex:
    """The project's run index (the real file)."""
    return RunIndex(project / ".workbench" / "index.db")


def assert_nothing_written(project: Path) -> None:
    """A refused launch left nothing: no run in the index, no run folder, no snapshot ref."""
    with index_of(project) as index:
        assert index.list_runs() == []
    runs = project / ".workbench" / "runs"
    assert not runs.is_dir() or not any(runs.iterdir())
    refs = subprocess.run(["git", "for-each-ref", "refs/workbench/"], cwd=project, capture_output=True, text=True)
    assert refs.stdout.strip() == ""


def run_row(project: Path, run_id: str) -> Run:
    """The run's row, read now."""
    with index_of(project) as index:
        row = index.get_run(run_id)
    assert row is not None, f"run {run_id} is not in the index"
    return row


def poll(what: Callable[[], Any], message: str, timeout: float = PATIENCE, every: float = 0.2) -> Any:
    """Call ``what`` until it returns something true; return that.

    Raises:
        AssertionError: ``timeout`` seconds passed (or :data:`ABORT` was set) first; the
            message says what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline or ABORT.is_set():
            raise AssertionError(f"gave up waiting after {timeout:g}s: {message}")
        time.sleep(every)


def wait_ended(project: Path, run_ids: Iterable[str], timeout: float = PATIENCE) -> dict[str, Run]:
    """Wait until no run of ``run_ids`` is live (queued or running); return their rows by id
    (read as they are: nothing is reconciled)."""
    ids = list(run_ids)

    def ended() -> dict[str, Run] | None:
        with index_of(project) as index:
            rows = {i: index.get_run(i) for i in ids}
        return rows if all(r is not None and not r.status.is_live for r in rows.values()) else None  # type: ignore[misc]

    return poll(ended, f"runs {ids} to end", timeout)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def pids_gone(pids: Iterable[int], timeout: float = 60.0) -> bool:
    """Wait until every process in ``pids`` has exited (reaped, or a zombie); return True."""
    pids = list(pids)
    return bool(poll(lambda: not any(pid_alive(p) for p in pids), f"processes {pids} to exit", timeout, every=0.05))


def _processes_of(row: Run) -> list[psutil.Process]:
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
    """SIGKILL every still-alive process of every run in ``project``; return their pids."""
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


def peak_overlap(project: Path, run_ids: list[str], start: str) -> int:
    """The most of ``run_ids`` at once between their first ``start`` event (``dequeued``: a
    queue slot taken; ``started``: training) and their final status's event, from the index."""
    edges = []
    with index_of(project) as index:
        for run_id in run_ids:
            events = index.events(run_id)
            began = [e.time for e in events if e.kind == start]
            ended = [e.time for e in events if e.kind in ("completed", "failed", "stopped", "interrupted")]
            assert began and ended, [e.kind for e in events]
            edges += [(began[0], 1), (ended[-1], -1)]
    running = peak = 0
    for _, change in sorted(edges):  # an end before a start at a tie
        running += change
        peak = max(peak, running)
    return peak
