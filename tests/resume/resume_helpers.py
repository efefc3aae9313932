"""Helpers for the fault-injection tests: real projects, real CLI processes, real runs.

Every run is started through the ``workbench`` CLI (a subprocess), trains in real
supervisor and training processes, and writes to a real SQLite index. Nothing is signalled
by process name: leftovers are found through the pids recorded in a project's index.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

import psutil

from workbench.store import RunIndex

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "sample_projects" / "quickstart"
FAULTY_TASK = Path(__file__).resolve().parent / "faulty_task.py"

#: Seconds a test waits for something a run does before giving up. Not a speed claim: the
#: machines that run the tests are shared and can be very slow.
PATIENCE = 300.0

CLI = [sys.executable, "-m", "workbench.cli"]

#: Set at teardown: every scenario still waiting gives up at its next poll.
ABORT = threading.Event()


def cli_env(base: Path, **extra: str) -> dict[str, str]:
    """The environment of every process a test starts: no user or system git config, no
    repository above ``base``, one intra-op thread per training process."""
    env = dict(os.environ)
    env.update({
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": str(base),
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
        "OMP_NUM_THREADS": "1",
    })
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "WORKBENCH_STALE_AFTER", "WORKBENCH_ATTEMPT",
                 "WORKBENCH_RUN_DIR", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env.update(extra)
    return env


def make_project(dest: Path, probe_cache: Path) -> Path:
    """A git-committed copy of the quickstart project in ``dest/quickstart`` with the
    fault-injection task as ``tasks/faulty.py`` and the session's device probe answer."""
    root = dest / "quickstart"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".workbench", "__pycache__"))
    shutil.copy(FAULTY_TASK, root / "tasks" / "faulty.py")
    (root / ".workbench").mkdir()
    shutil.copy(probe_cache, root / ".workbench" / "devices.json")
    (root / ".gitignore").write_text(".workbench/\n__pycache__/\n")
    env = cli_env(dest)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "quickstart"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def wb(project: Path, *args: str, env: dict[str, str] | None = None,
       timeout: float = PATIENCE) -> subprocess.CompletedProcess[str]:
    """Run ``workbench ARGS`` in ``project`` as a subprocess; return what it did."""
    return subprocess.run([*CLI, *args], cwd=project, env=env or cli_env(project.parent),
                          capture_output=True, text=True, timeout=timeout)


def wb_json(project: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """``workbench ARGS`` that must succeed and print JSON; return the parsed output."""
    result = wb(project, *args, env=env)
    assert result.returncode == 0, f"workbench {' '.join(args)} exited {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)


def launch(project: Path, *args: str, wait: bool = False) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """``workbench run Faulty --device cpu ARGS --json`` (``--wait`` to wait for the end).

    Returns:
        The run's record (as printed) and the completed CLI process (its exit status says
        whether a waited-for run completed).
    """
    result = wb(project, "run", "Faulty", "--device", "cpu", *args, "--json", *(["--wait"] if wait else []))
    assert result.stdout.strip(), f"workbench run printed nothing (exit {result.returncode}): {result.stderr}"
    return json.loads(result.stdout), result


def index_of(project: Path) -> RunIndex:
    """The project's run index (the real file)."""
    return RunIndex(project / ".workbench" / "index.db")


def run_row(project: Path, run_id: str) -> dict[str, Any]:
    """The run's row, read now."""
    with index_of(project) as index:
        row = index.get_run(run_id)
    assert row is not None, f"run {run_id} is not in the index"
    return row


def run_snapshot(project: Path, run_id: str) -> dict[str, Any]:
    """Everything the index holds about one run: its row, events, live and set-aside points."""
    with index_of(project) as index:
        row = index.get_run(run_id)
        events = index.events(run_id)
        keys = index.metric_keys(run_id)
        points = {k: index.points(run_id, k) for k in keys}
        aside = index.aside_points(run_id)
    return {"row": row, "events": events, "points": points, "aside": aside}


def poll(what: Callable[[], Any], message: str, timeout: float = PATIENCE, every: float = 0.2) -> Any:
    """Call ``what`` until it returns something true; return that, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline or ABORT.is_set():
            raise AssertionError(f"gave up waiting: {message}")
        time.sleep(every)


def wait_ended(project: Path, run_id: str) -> dict[str, Any]:
    """Wait until the run has left ``queued``/``running``; return its row (no reconciling)."""
    def ended() -> dict[str, Any] | None:
        row = run_row(project, run_id)
        return row if row.status not in ("queued", "running") else None

    return poll(ended, f"run {run_id} to end")


def wait_settled(project: Path, run_id: str) -> dict[str, Any]:
    """Wait until an ended run's supervisor has exited (it writes the exit status and the
    artifacts after the training process reported the outcome); return the row."""
    row = wait_ended(project, run_id)
    if row.supervisor_pid:
        pids_gone([int(row.supervisor_pid)], timeout=PATIENCE)
    return run_row(project, run_id)


def wait_held(project: Path, run_id: str) -> int:
    """Wait until the run's first attempt holds at its ``hold_at_step``; return that step."""
    held = Path(run_row(project, run_id).run_dir) / "held"

    def holding() -> int | None:
        row = run_row(project, run_id)
        assert row.status in ("queued", "running"), f"run {run_id} ended early: {row.status} {row.error}"
        return int(held.read_text()) if held.is_file() and held.read_text() else None

    return poll(holding, f"run {run_id} to hold")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def pids_gone(pids: Iterable[int], timeout: float = 60.0) -> None:
    """Wait until every process in ``pids`` has exited (reaped, or a zombie)."""
    def gone() -> bool:
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    return False
            except psutil.NoSuchProcess:
                continue
        return True

    poll(gone, f"processes {list(pids)} to exit", timeout, every=0.05)


def step_files(run_dir: str | Path) -> list[Path]:
    """The run's ``step-*.pt`` checkpoints, oldest first."""
    return sorted((Path(run_dir) / "checkpoints").glob("step-*.pt"))


def events_of(show: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The events of one kind in a ``workbench show --json`` record."""
    return [e for e in show["events"] if e["kind"] == kind]


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


class Campaign:
    """Scenarios (each a function of real runs) that run concurrently in threads.

    A scenario starts when it is first asked for (or :meth:`start`-ed ahead); a test waits
    for its result with :meth:`result`. A scenario may wait for another one.
    """

    def __init__(self, scenarios: dict[str, Callable[["Campaign"], Any]], context: Any) -> None:
        self.scenarios = scenarios
        self.context = context
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(scenarios)), thread_name_prefix="scenario")
        self._futures: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()

    def start(self, names: Iterable[str]) -> None:
        """Start these scenarios now (those already started are left alone)."""
        for name in names:
            self._future(name)

    def _future(self, name: str) -> Future[Any]:
        with self._lock:
            if name not in self._futures:
                self._futures[name] = self._pool.submit(self._run, name)
            return self._futures[name]

    def _run(self, name: str) -> Any:
        try:
            return self.scenarios[name](self)
        except BaseException:
            raise RuntimeError(f"scenario {name!r} failed:\n{traceback.format_exc()}") from None

    def result(self, name: str, timeout: float = 3 * PATIENCE) -> Any:
        """The scenario's result (started if needed); its failure is raised here."""
        return self._future(name).result(timeout=timeout)

    def unfinished(self) -> list[str]:
        """The scenarios started and not finished."""
        return [name for name, future in self._futures.items() if not future.done()]

    def close(self, timeout: float = PATIENCE) -> None:
        """Wait (up to ``timeout``) for every started scenario, then drop the threads.

        A scenario still running at this point (a test gave up on it) stops at its next
        poll; one waiting in a CLI call ends when that call does.
        """
        deadline = time.monotonic() + timeout
        if self.unfinished():
            ABORT.set()
        for future in list(self._futures.values()):
            try:
                future.result(timeout=max(0.1, deadline - time.monotonic()))
            except BaseException:  # noqa: BLE001 - the tests report failures
                pass
        self._pool.shutdown(wait=False, cancel_futures=True)
