"""Reconcile: a run whose processes vanished without a word is marked interrupted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from workbench.runs.liveness import INTERRUPTED_ERROR, process_create_time, reconcile
from workbench.store import RunIndex, RunStatus


@pytest.fixture()
def memory_index() -> RunIndex:
    with RunIndex(memory=True) as index:
        yield index


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _running(index: RunIndex, **fields: object) -> str:
    stale = time.time() - 60
    values = {"status": "running", "started_at": stale, "heartbeat_at": stale, **fields}
    return index.create_run(task="t", **values).id


def test_stale_run_with_dead_supervisor_is_interrupted(memory_index: RunIndex, dead_pid: int) -> None:
    run_id = _running(memory_index, supervisor_pid=dead_pid, pid=dead_pid)
    before = memory_index.get_run(run_id).updated_at
    assert reconcile(memory_index, 15) == [run_id]
    run = memory_index.get_run(run_id)
    assert run.status is RunStatus.INTERRUPTED
    assert run.error == INTERRUPTED_ERROR
    # It ended at its last sign of life, not when a reader noticed.
    assert run.ended_at == run.heartbeat_at and run.updated_at > before
    assert [e.kind for e in memory_index.events(run_id)] == ["interrupted"]
    assert reconcile(memory_index, 15) == []  # already done


def test_live_supervisor_keeps_its_run_running(memory_index: RunIndex) -> None:
    me = os.getpid()
    run_id = _running(memory_index, supervisor_pid=me, supervisor_create_time=process_create_time(me))
    assert reconcile(memory_index, 15) == []
    assert memory_index.get_run(run_id).status is RunStatus.RUNNING


def test_fresh_heartbeat_keeps_its_run_even_with_a_dead_pid(memory_index: RunIndex, dead_pid: int) -> None:
    run_id = _running(memory_index, supervisor_pid=dead_pid, heartbeat_at=time.time())
    assert reconcile(memory_index, 15) == []
    assert memory_index.get_run(run_id).status is RunStatus.RUNNING


def test_runs_of_other_hosts_are_left_alone(memory_index: RunIndex, dead_pid: int) -> None:
    run_id = _running(memory_index, supervisor_pid=dead_pid, host="some-other-machine")
    assert reconcile(memory_index, 15) == []
    assert memory_index.get_run(run_id).status is RunStatus.RUNNING


def test_reused_pid_is_not_taken_for_the_supervisor(memory_index: RunIndex) -> None:
    me = os.getpid()
    run_id = _running(memory_index, supervisor_pid=me, supervisor_create_time=process_create_time(me) - 3600)
    assert reconcile(memory_index, 15) == [run_id]


def test_old_queued_run_without_supervisor_is_interrupted(memory_index: RunIndex) -> None:
    old = memory_index.create_run(task="t", created_at=time.time() - 60).id
    new = memory_index.create_run(task="t").id
    finished = memory_index.create_run(task="t", status="completed", created_at=time.time() - 60).id
    assert reconcile(memory_index, 15) == [old]
    assert memory_index.get_run(new).status is RunStatus.QUEUED
    assert memory_index.get_run(finished).status is RunStatus.COMPLETED
