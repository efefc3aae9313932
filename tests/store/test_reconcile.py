"""Reconcile: a run whose processes vanished without a word is marked interrupted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from workbench.store import INTERRUPTED_ERROR, RunIndex, process_create_time


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _running(index: RunIndex, **fields: object) -> str:
    stale = time.time() - 60
    values = {"status": "running", "started_at": stale, "heartbeat_at": stale, **fields}
    return index.create_run(task="t", **values)["id"]


def test_stale_run_with_dead_supervisor_is_interrupted(memory_index: RunIndex, dead_pid: int) -> None:
    run_id = _running(memory_index, supervisor_pid=dead_pid, pid=dead_pid)
    before = memory_index.get_run(run_id)["updated_at"]
    assert memory_index.reconcile(stale_after=15) == [run_id]
    run = memory_index.get_run(run_id)
    assert run["status"] == "interrupted"
    assert run["error"] == INTERRUPTED_ERROR
    assert run["ended_at"] is not None and run["updated_at"] > before
    assert [e["kind"] for e in memory_index.events(run_id)] == ["interrupted"]
    assert memory_index.reconcile(stale_after=15) == []  # already done


def test_live_supervisor_keeps_its_run_running(memory_index: RunIndex) -> None:
    me = os.getpid()
    run_id = _running(memory_index, supervisor_pid=me, supervisor_create_time=process_create_time(me))
    assert memory_index.reconcile(stale_after=15) == []
    assert memory_index.get_run(run_id)["status"] == "running"


def test_fresh_heartbeat_keeps_its_run_even_with_a_dead_pid(memory_index: RunIndex, dead_pid: int) -> None:
    run_id = _running(memory_index, supervisor_pid=dead_pid, heartbeat_at=time.time())
    assert memory_index.reconcile(stale_after=15) == []
    assert memory_index.get_run(run_id)["status"] == "running"


def test_runs_of_other_hosts_are_left_alone(memory_index: RunIndex, dead_pid: int) -> None:
    run_id = _running(memory_index, supervisor_pid=dead_pid, host="some-other-machine")
    assert memory_index.reconcile(stale_after=15) == []
    assert memory_index.get_run(run_id)["status"] == "running"


def test_reused_pid_is_not_taken_for_the_supervisor(memory_index: RunIndex) -> None:
    me = os.getpid()
    run_id = _running(memory_index, supervisor_pid=me, supervisor_create_time=process_create_time(me) - 3600)
    assert memory_index.reconcile(stale_after=15) == [run_id]


def test_old_queued_run_without_supervisor_is_interrupted(memory_index: RunIndex) -> None:
    old = memory_index.create_run(task="t", created_at=time.time() - 60)["id"]
    new = memory_index.create_run(task="t")["id"]
    finished = memory_index.create_run(task="t", status="completed", created_at=time.time() - 60)["id"]
    assert memory_index.reconcile(stale_after=15) == [old]
    assert memory_index.get_run(new)["status"] == "queued"
    assert memory_index.get_run(finished)["status"] == "completed"
