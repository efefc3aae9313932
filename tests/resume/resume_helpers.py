"""Helpers for the fault-injection tests: real projects, real CLI processes, real runs.

Every run is started through the ``workbench`` CLI (a subprocess), trains in real
supervisor and training processes, and writes to a real SQLite index. What other test
folders need as well (projects, the CLI as a subprocess, waiting, killing what runs left
behind) is in :mod:`support.projects`, passed on from here; this module adds the
fault-injection task, the scenario campaign and the checks only these tests use.
"""

from __future__ import annotations

import functools
import json
import subprocess
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

import support.projects as shared
from support.projects import ABORT, CLI, index_of, kill_run_processes, pid_alive, pids_gone, run_row
from support.projects import clean_env as cli_env

from workbench.store import Run

__all__ = [
    "ABORT", "CLI", "FAULTY_TASK", "PATIENCE", "Campaign", "cli_env", "events_of", "index_of",
    "kill_run_processes", "launch", "make_project", "pid_alive", "pids_gone", "poll", "run_row",
    "run_snapshot", "step_files", "wait_ended", "wait_held", "wait_settled", "wb", "wb_json",
]

FAULTY_TASK = Path(__file__).resolve().parent / "faulty_task.py"

#: Seconds a scenario waits for something a run does before giving up (the scenarios run
#: in a session fixture, outside pytest's per-test timeout). Not a speed claim: the
#: machines that run the tests are shared and can be very slow.
PATIENCE = 300.0

#: :func:`support.projects.wb` and :func:`~support.projects.poll` with this folder's
#: patience (a poll also gives up once :data:`ABORT` is set, at teardown).
wb = functools.partial(shared.wb, timeout=PATIENCE)
poll = functools.partial(shared.poll, timeout=PATIENCE)


def make_project(dest: Path, probe_cache: Path) -> Path:
    """A git-committed copy of the quickstart project in ``dest/quickstart`` with the
    fault-injection task as ``tasks/faulty.py`` and the session's device probe answer."""
    return shared.make_project(dest, probe_cache, {"tasks/faulty.py": FAULTY_TASK.read_text()})


def wait_ended(project: Path, run_id: str) -> Run:
    """Wait until the run has left ``queued``/``running``; return its row (no reconciling)."""
    return shared.wait_ended(project, [run_id], PATIENCE)[run_id]


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


def run_snapshot(project: Path, run_id: str) -> dict[str, Any]:
    """Everything the index holds about one run: its row, events, live and set-aside points."""
    with index_of(project) as index:
        row = index.get_run(run_id)
        events = index.events(run_id)
        keys = index.metric_keys(run_id)
        points = {k: index.points(run_id, k) for k in keys}
        aside = index.aside_points(run_id)
    return {"row": row, "events": events, "points": points, "aside": aside}


def wait_settled(project: Path, run_id: str) -> Run:
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
        assert row.status.is_live, f"run {run_id} ended early: {row.status} {row.error}"
        return int(held.read_text()) if held.is_file() and held.read_text() else None

    return poll(holding, f"run {run_id} to hold")


def step_files(run_dir: str | Path) -> list[Path]:
    """The run's ``step-*.pt`` checkpoints, oldest first."""
    return sorted((Path(run_dir) / "checkpoints").glob("step-*.pt"))


def events_of(show: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The events of one kind in a ``workbench show --json`` record."""
    return [e for e in show["events"] if e["kind"] == kind]


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

    def restart(self, name: str) -> None:
        """Run scenario ``name`` again (new runs in the same project); its next
        :meth:`result` is the new one's. For a test that is run a second time."""
        with self._lock:
            self._futures[name] = self._pool.submit(self._run, name)

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
