"""How a run ends when someone intervenes: ``stop``, ``kill -9`` of the training process,
``kill -9`` of the supervisor and the training process (reconciled by the next reader),
and a stop sent the moment a run is launched. Real processes, a real index file.

Three long runs start together (the ``live`` fixture) and are then stopped or killed.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from runs_helpers import (
    SLOW_TASK,
    end_cli,
    git_env,
    invoke,
    launch,
    pid_gone,
    run_row,
    train_loss_steps,
    wait_ended,
    wait_training,
    wb,
    wb_start,
)

from workbench.runs.liveness import STALE_AFTER_ENV

pytestmark = pytest.mark.slow

PROJECT_FILES = {"tasks/slow.py": SLOW_TASK}

#: Far more steps than any test waits for (each sleeps 50 ms); the teardown kills what is left.
LONG = ("Slow", "-s", "epochs=1000", "-s", "samples=2000")


@pytest.fixture(scope="module")
def live(module_project: Path) -> dict[str, str]:
    """Three long runs, launched one after the other, all training (step >= 2) on return."""
    ids = {name: launch(module_project, *LONG, "--name", name)["id"]
           for name in ("stopme", "killtrain", "killboth")}
    for run_id in ids.values():
        wait_training(module_project, run_id, min_step=2)
    return ids


@pytest.fixture
def follower(module_project: Path, live: dict[str, str]) -> Iterator[list]:
    procs: list = []
    yield procs
    end_cli(procs)


def test_show_describes_a_running_run(module_project: Path, live: dict[str, str]) -> None:
    text = invoke(module_project, "show", "stopme")
    as_json = invoke(module_project, "show", live["stopme"], "--json")

    assert text.exit_code == 0 and as_json.exit_code == 0
    assert f"run {live['stopme']}" in text.stdout and "running" in text.stdout
    record = json.loads(as_json.stdout)
    assert record["status"] == "running"
    assert record["started_at"] is not None and record["ended_at"] is None
    assert record["exit_code"] is None and record["error"] is None
    assert record["progress"]["step"] >= 2 and record["progress"]["total"] == 63_000
    assert "train/loss" in record["metrics"]
    assert {"events", "traceback", "artifacts"} <= set(record)
    assert [e["kind"] for e in record["events"]][:2] == ["launched", "started"]


def test_live_runs_are_never_reconciled(module_project: Path, live: dict[str, str]) -> None:
    """Even with no staleness window at all, a run whose supervisor lives stays running."""
    result = invoke(module_project, "ls", "--json", env={STALE_AFTER_ENV: "0"})

    assert result.exit_code == 0, result.stderr
    statuses = {r["id"]: r["status"] for r in json.loads(result.stdout)}
    assert [statuses[i] for i in live.values()] == ["running"] * 3


def test_stop_leaves_a_stopped_run_with_every_point_it_logged(
        module_project: Path, live: dict[str, str], follower: list) -> None:
    run_id = live["stopme"]
    logs = wb_start(module_project, "logs", "--follow", run_id)
    follower.append(logs)

    result = wb(module_project, "stop", "stopme")

    assert result.returncode == 0, result.stderr
    assert f"stop requested for run {run_id}" in result.stdout
    row = wait_ended(module_project, [run_id])[run_id]
    assert row.status == "stopped"
    assert row.exit_code == 0 and row.error is None
    assert 2 <= row.step < row.total_steps
    # The metric writer was flushed on the way out: no step of the curve is missing.
    assert train_loss_steps(module_project, run_id) == list(range(1, row.step + 1))
    assert not _alive(row.supervisor_pid) and not _alive(row.pid)
    logs.communicate(timeout=60)  # `logs --follow` ends with the run
    assert logs.returncode == 0
    again = invoke(module_project, "stop", run_id)
    assert again.exit_code == 2
    assert again.stderr.strip() == f"error: run {run_id} is stopped; only a queued or running run can be stopped"


def test_kill_9_of_the_training_process_leaves_interrupted(module_project: Path, live: dict[str, str]) -> None:
    run_id = live["killtrain"]
    before = run_row(module_project, run_id)

    os.kill(before.pid, signal.SIGKILL)

    row = wait_ended(module_project, [run_id])[run_id]  # written by the supervisor
    assert row.status == "interrupted"
    assert (row.exit_code, row.signal) == (-9, 9)
    assert "SIGKILL" in row.error
    assert row.ended_at is not None
    assert pid_gone(before.supervisor_pid)


def test_kill_9_of_supervisor_and_training_is_reconciled_by_the_next_ls(
        module_project: Path, live: dict[str, str]) -> None:
    run_id = live["killboth"]
    before = run_row(module_project, run_id)

    os.kill(before.supervisor_pid, signal.SIGKILL)
    os.kill(before.pid, signal.SIGKILL)
    assert pid_gone(before.supervisor_pid) and pid_gone(before.pid)
    assert run_row(module_project, run_id).status == "running"  # nobody is left to write it

    # The default window waits 15 s for a stale heartbeat; the knob makes it now.
    env = {**git_env(module_project.parent), STALE_AFTER_ENV: "0"}
    result = wb(module_project, "ls", "--json", env=env)  # a new process, as a user would

    assert result.returncode == 0, result.stderr
    listed = {r["id"]: r for r in json.loads(result.stdout)}
    assert listed[run_id]["status"] == "interrupted"
    assert "gone" in listed[run_id]["error"]
    row = run_row(module_project, run_id)
    assert row.status == "interrupted" and row.ended_at is not None


def test_a_stop_sent_right_after_launch_ends_stopped(module_project: Path) -> None:
    project = module_project
    run_id = launch(project, *LONG)["id"]

    result = invoke(project, "stop", run_id)  # in this process: no start-up delay

    assert result.exit_code == 0, result.output
    row = wait_ended(project, [run_id])[run_id]
    # (seen once in CI, not reproduced: 'failed', exit code 1 before reporting; the log's tail says why)
    assert row.status == "stopped", (row.status, row.error, row.traceback)
    assert not _alive(row.supervisor_pid) and not _alive(row.pid)


def _alive(pid: int | None) -> bool:
    return pid is not None and not pid_gone(pid, timeout=30)


def test_stop_takes_several_runs_and_a_typo_stops_none(module_project: Path) -> None:
    project = module_project
    first, second = (launch(project, *LONG)["id"] for _ in range(2))

    typo = invoke(project, "stop", first, "zzzz", second)
    assert typo.exit_code == 2 and "no run matches 'zzzz'" in typo.stderr, typo.output
    assert run_row(project, first).status.is_live and run_row(project, second).status.is_live

    both = invoke(project, "stop", first, second, first)  # a name given twice is stopped once
    assert both.exit_code == 0, both.output
    assert [line.split(" for run ")[1][:len(first)] for line in both.stdout.splitlines()] == [first, second]
    rows = wait_ended(project, [first, second])
    assert {rows[first].status, rows[second].status} == {"stopped"}, rows

    again = invoke(project, "stop", first, second)  # each refused on its own line; exit 2
    assert again.exit_code == 2
    assert again.stderr.splitlines() == [
        f"error: run {run_id} is stopped; only a queued or running run can be stopped" for run_id in (first, second)]
