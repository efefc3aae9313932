"""A cluster run whose watcher died between its attempt's end and the job's requeue (issue 13):
the row says ``stopped`` while Slurm runs the job again; the next workbench process adopts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from support.projects import clean_env, index_of, poll, run_row, wait_ended, wb
from support.slow_sine import commit_slow_sine

from workbench.runs.ingest import JournalIngester
from workbench.runs.slurm import job_state
from workbench.store import RunStatus

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_a_requeue_whose_watcher_died_is_adopted_and_completes(project: Path, slurm: dict[str, str]) -> None:
    """The time-limit warning ends attempt 1 ``stopped`` and the trainer requeues its job; the
    watcher is frozen before it sees any of it, the test ingests the journal as the watcher
    would (the row turns ``stopped``), then kills the watcher: the gap. ``workbench resume``
    says the job was requeued and a watcher follows it; attempt 2 starts at once (Slurm's
    two-minute hold released), completes, with every point once."""
    env = clean_env(project.parent, **slurm)
    commit_slow_sine(project, env)  # 480 steps of 0.02 s or more: still training when the warning comes
    launched = wb(project, "run", "SlowSine", "-s", "samples=400", "-s", "epochs=40", "-s", "pause=0.02",
                  "--on", "here", "--json", env=env)
    assert launched.returncode == 0, launched.stderr
    run_id = json.loads(launched.stdout)["id"]

    def past_a_checkpoint() -> bool:
        with index_of(project) as index:
            return any(e.kind == "checkpoint" for e in index.events(run_id))

    poll(past_a_checkpoint, "a checkpoint of attempt 1")
    row = run_row(project, run_id)
    watcher, run_dir = row.supervisor_pid, Path(row.run_dir or "")
    assert watcher and row.status is RunStatus.RUNNING and (row.status_reason or "").startswith("slurm job "), row
    job = str(json.loads((run_dir / "cluster.json").read_text())["jobs"][-1]["job_id"])
    os.kill(watcher, signal.SIGSTOP)  # it must not follow the requeue before it dies
    try:
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True, env=env)
        poll(lambda: (run_dir / "attempts" / "1" / "outcome.json").is_file(), "attempt 1's outcome")
        poll(lambda: (state := job_state(job)) is not None and state.restarts == 1 and state.pending,
             "the trainer's own requeue")
        with index_of(project) as index:  # what the watcher did last: ingest the attempt's end
            JournalIngester(index, run_dir, run_id).drain()
    finally:
        os.kill(watcher, signal.SIGKILL)
    row = run_row(project, run_id)
    assert row.status is RunStatus.STOPPED and row.attempt == 1, (row.status, row.attempt, row.error)
    assert json.loads((run_dir / "attempts" / "1" / "outcome.json").read_text())["reason"] == "stopped by SIGUSR1"

    resumed = wb(project, "resume", run_id, env=env)  # reconcile adopts; resume says so, submits nothing
    assert resumed.returncode == 2, resumed.stdout + resumed.stderr  # a refusal (one line), not a new job
    assert f"slurm job {job} was requeued by Slurm" in resumed.stderr and "a watcher now follows it" in resumed.stderr
    assert "Traceback" not in resumed.stderr
    poll(lambda: run_row(project, run_id).attempt == 2, "the adopting watcher to follow the requeue")
    listed = wb(project, "ls", env={**env, "WORKBENCH_STALE_AFTER": "0"})  # a second look starts no second watcher
    assert listed.returncode == 0, listed.stderr
    done = wait_ended(project, [run_id])[run_id]
    assert done.status is RunStatus.COMPLETED and done.attempt == 2, (done.status, done.error)
    jobs = [(j["attempt"], str(j["job_id"])) for j in json.loads((run_dir / "cluster.json").read_text())["jobs"]]
    assert jobs == [(1, job), (2, job)], jobs
    with index_of(project) as index:
        steps = [s for s, _, _ in index.points(run_id, "train/loss")]
        events = index.events(run_id)
    assert steps == list(range(1, done.total_steps + 1))
    assert [e.kind for e in events].count("adopted") == 1, [e.message for e in events]
    requeued = [e for e in events if e.kind == "requeued"]
    assert [(e.data["attempt"], e.data["previous_status"]) for e in requeued] == [(2, "stopped")], requeued
    poll(lambda: run_row(project, run_id).status_reason is None, "the watcher to conclude attempt 2")
