"""Runs on a real one-node Slurm (``scripts/slurm_up.sh``): submitted with ``--on``,
followed by their watcher, stopped, killed and resumed through Slurm. Few and tiny: CI
runs them on every push."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.projects import assert_nothing_written, clean_env, index_of, poll, run_row, wait_ended, wb
from support.slow_sine import commit_slow_sine

from workbench.store import RunStatus

# One worker runs them all (make test uses pytest-xdist with --dist loadscope: a module's tests
# share a worker): the session's Slurm is brought up, and stopped at the end, by that worker.
pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SMALL = ["-s", "samples=400"]


def _env(project: Path, slurm: dict[str, str]) -> dict[str, str]:
    return clean_env(project.parent, **slurm)


def _launch(project: Path, slurm: dict[str, str], *args: str, task: str = "SineRegression") -> str:
    result = wb(project, "run", task, *SMALL, *args, "--json", env=_env(project, slurm))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["id"]


def _jobs(project: Path, run_id: str) -> list[dict[str, Any]]:
    return json.loads((Path(run_row(project, run_id).run_dir or "") / "cluster.json").read_text())["jobs"]


def _final_weights(run_dir: str | None) -> tuple[str, dict[str, Any]]:
    import torch

    files = sorted((Path(run_dir or "") / "checkpoints").glob("step-*.pt"))
    assert files, f"no step checkpoint in {run_dir}"
    return files[-1].name, torch.load(files[-1], map_location="cpu", weights_only=True)


def _assert_equal(a: Any, b: Any, where: str) -> None:
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys differ"
        for key in a:
            _assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_a_slurm_run_completes_with_its_metrics_in_the_index_while_it_runs(project: Path, slurm: dict[str, str]) -> None:
    slurm = {**slurm, "WORKBENCH_SYS_EVERY": "1"}  # sys/* sampled inside the job, every second
    commit_slow_sine(project, _env(project, slurm))  # 480 steps of 0.01 s or more: seen while it runs
    run_id = _launch(project, slurm, "--on", "here", "-s", "epochs=40", "-s", "pause=0.01", task="SlowSine")
    jobs = _jobs(project, run_id)
    assert len(jobs) == 1 and jobs[0]["attempt"] == 1 and jobs[0]["job_id"].isdigit()

    def points_while_running() -> bool:
        row = run_row(project, run_id)
        assert row.status.is_live, f"ended before any point was seen: {row.status} {row.error}"
        with index_of(project) as index:
            return row.status is RunStatus.RUNNING and bool(index.points(run_id, "train/loss"))

    poll(points_while_running, "train/loss points in the index while the Slurm job runs")
    row = wait_ended(project, [run_id])[run_id]
    assert row.status is RunStatus.COMPLETED, row.error
    with index_of(project) as index:
        steps = [s for s, _, _ in index.points(run_id, "train/loss")]
        events = [e.kind for e in index.events(run_id)]
        system = {key: index.points(run_id, key) for key in ("sys/cpu_percent", "sys/rss_mb", "sys/memory_percent")}
    assert steps == list(range(1, row.total_steps + 1))
    for key, points in system.items():  # stored against time (ms) within the run's life, through the journal
        assert points, f"no {key} point from inside the job"
        assert all(row.started_at * 1000 - 2000 <= s <= row.ended_at * 1000 + 2000 for s, _, _ in points), key
    assert max(v for _, v, _ in system["sys/rss_mb"]) > 50  # the trainer's own memory (torch alone is more)
    assert "submitted" in events and events.index("submitted") < events.index("started")
    assert (Path(row.run_dir) / "attempts" / "1" / "outcome.json").is_file()
    poll(lambda: run_row(project, run_id).status_reason is None, "the watcher to clear the job's state")
    shown = wb(project, "show", run_id, env=_env(project, slurm))
    assert f"job(s) {jobs[0]['job_id']} (attempt 1)" in shown.stdout, shown.stdout


def _past_a_checkpoint_of(project: Path, run_id: str, attempt: int) -> bool:
    """Whether attempt ``attempt`` of the run is the row's and has written a checkpoint."""
    row = run_row(project, run_id)
    assert row.status.is_live or row.attempt < attempt, f"ended too early: {row.status} {row.error}"
    with index_of(project) as index:
        events = index.events(run_id)  # in time order
    starts = [i for i, e in enumerate(events) if e.kind == "started" and f"attempt {attempt}," in e.message]
    return row.attempt == attempt and bool(starts) and any(e.kind == "checkpoint" for e in events[starts[-1]:])


def test_stop_resume_and_requeues_end_bit_for_bit_as_an_uninterrupted_run(project: Path, slurm: dict[str, str]) -> None:
    """``workbench stop`` -> stopped -> ``resume`` (a new job); then Slurm's time-limit or
    preemption warning (SIGUSR1 to the batch step, as ``--signal=B:USR1@lead`` sends it):
    the trainer checkpoints, stops and requeues its job; then a real preemption: a job of
    partition ``high`` that needs the whole node makes Slurm requeue the run's job
    (PreemptMode=REQUEUE: SIGTERM, SIGKILL after KillWait, requeue). Each requeue runs the
    same job again as the next attempt, resumed from the checkpoint; the end is bit for bit
    an uninterrupted run's."""
    toml = project / "workbench.toml"  # partition `low`: the one `high` preempts (never `debug`, other tests' jobs)
    toml.write_text(toml.read_text().replace('partition = "debug"', 'partition = "low"'))
    env = _env(project, slurm)
    commit_slow_sine(project, env)
    # 12 steps an epoch (a checkpoint each), 0.05 s a step or slower: at least 0.6 s between two
    # checkpoints and 12 s of training, so that four attempts fit (each signal follows a
    # checkpoint the test saw) however fast the machine; a bare SineRegression ran all 60 epochs
    # in 5 s on a fast machine, before the test could stop it.
    task = ["SlowSine", *SMALL, "-s", "epochs=20", "-s", "pause=0.05", "--json"]

    def launch(*args: str) -> str:
        result = wb(project, "run", *task, *args, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["id"]

    base = launch()  # on this machine, uninterrupted
    run_id = launch("--on", "here")
    poll(lambda: _past_a_checkpoint_of(project, run_id, 1), "a checkpoint of the Slurm run")
    assert wb(project, "stop", run_id, env=env).returncode == 0
    stopped = wait_ended(project, [run_id])[run_id]
    assert stopped.status is RunStatus.STOPPED, stopped.error
    resumed = wb(project, "resume", run_id, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    job = _jobs(project, run_id)[-1]["job_id"]
    poll(lambda: _past_a_checkpoint_of(project, run_id, 2), "attempt 2 (workbench resume) past a checkpoint")
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True, env=env)
    poll(lambda: _past_a_checkpoint_of(project, run_id, 3), "attempt 3 (the requeued job) past a checkpoint")
    preemptor = subprocess.run(["sbatch", "--parsable", "--partition=high", "--exclusive", "--output=/dev/null",
                                "--wrap", "true"], capture_output=True, text=True, env=env, cwd=project)
    assert preemptor.returncode == 0, preemptor.stderr
    # (the row reads 'stopped' for a moment: attempt 3 ended, the watcher has not seen the requeue yet)

    def preempted() -> bool:
        row = run_row(project, run_id)
        assert row.attempt == 4 or row.status is not RunStatus.COMPLETED, "attempt 3 completed: nothing preempted it"
        return row.attempt == 4

    poll(preempted, "attempt 4 after the preemption")
    done = wait_ended(project, [run_id, base])
    row = done[run_id]
    assert row.status is RunStatus.COMPLETED and row.attempt == 4, (row.status, row.attempt, row.error)
    jobs = [(j["attempt"], j["job_id"]) for j in _jobs(project, run_id)]
    assert jobs[1:] == [(2, job), (3, job), (4, job)] and jobs[0][1] != job, jobs
    third = json.loads((Path(row.run_dir or "") / "attempts" / "2" / "outcome.json").read_text())
    assert third["status"] == "stopped" and "SIGUSR1" in third["reason"], third
    fourth = json.loads((Path(row.run_dir or "") / "attempts" / "3" / "outcome.json").read_text())
    # SIGTERM: a checkpoint if within KillWait
    assert fourth["status"] == "interrupted" or "SIGTERM" in fourth["reason"], fourth
    with index_of(project) as index:
        requeued = [e for e in index.events(run_id) if e.kind == "requeued"]
        steps = [s for s, _, _ in index.points(run_id, "train/loss")]
    assert [(e.data["attempt"], e.data["cause"]) for e in requeued] == [(3, "the warning signal"), (4, "preempted")], \
        [e.message for e in requeued]
    assert steps == list(range(1, row.total_steps + 1))
    name, state = _final_weights(row.run_dir)
    base_name, base_state = _final_weights(done[base].run_dir)
    assert name == base_name
    for part in ("model", "optimizer", "scheduler"):
        _assert_equal(state[part], base_state[part], part)


#: A cluster with Slurm's shortest time limit (one minute) and a warning 30 s before it.
#: Slurm's timer looks every 30 s and sends the warning once at most lead + 30 s are left:
#: here at its first look after an attempt started, 0 to 30 s into it (during the trainer's
#: start-up too: then it stops before its first step).
SHORT_CLUSTER = """
[clusters.short]
kind = "slurm"
partition = "debug"
time = "1"
signal_lead = 30
"""


@pytest.mark.timeout(180)
def test_a_run_longer_than_its_time_limit_goes_on_after_the_warning(project: Path, slurm: dict[str, str]) -> None:
    """A real time limit: ``--time=1`` and ``--signal=B:USR1@30``. The run needs 31 s of
    steps, more than an attempt trains before its warning (at most 30 s in, less start-up):
    the warning makes the trainer checkpoint, stop and requeue its job, and the next attempt
    resumes; the run completes after two attempts or more, with every point once."""
    env = _env(project, slurm)
    toml = project / "workbench.toml"
    toml.write_text(toml.read_text() + SHORT_CLUSTER)
    commit_slow_sine(project, env)
    launched = wb(project, "run", "SlowSine", "--on", "short", "-s", "samples=992", "-s", "epochs=2",
                  "-s", "pause=0.5", "--json", env=env)
    assert launched.returncode == 0, launched.stderr
    run_id = json.loads(launched.stdout)["id"]

    def completed() -> Any:
        row = run_row(project, run_id)  # 'stopped' for a moment between two attempts
        assert row.status in (RunStatus.COMPLETED, RunStatus.STOPPED) or row.status.is_live, (row.status, row.error)
        return row if row.status is RunStatus.COMPLETED else None

    row = poll(completed, "the run to complete across its time limits", timeout=150)
    assert row.attempt >= 2, row.attempt
    job = _jobs(project, run_id)[0]["job_id"]
    attempts = range(1, row.attempt + 1)
    assert [(j["attempt"], j["job_id"]) for j in _jobs(project, run_id)] == [(n, job) for n in attempts]
    for attempt in range(1, row.attempt):
        outcome = json.loads((Path(row.run_dir or "") / "attempts" / str(attempt) / "outcome.json").read_text())
        # (interrupted: a warning that came while python started killed the trainer, and the watcher requeued)
        assert outcome["reason"] == "stopped by SIGUSR1" or outcome["status"] == "interrupted", outcome
    with index_of(project) as index:
        requeued = [e.data for e in index.events(run_id) if e.kind == "requeued"]
        steps = [s for s, _, _ in index.points(run_id, "train/loss")]
    assert [(d["attempt"], d["cause"]) for d in requeued] == [(n, "the warning signal") for n in attempts[1:]]
    assert steps == list(range(1, row.total_steps + 1))


def test_a_warning_that_killed_a_starting_trainer_requeues_the_job(tmp_path: Path, slurm: dict[str, str]) -> None:
    """SIGUSR1 before the trainer listens (python still starting) kills the batch step: the
    watcher requeues the ended job, unless the attempt wrote its outcome."""
    from workbench.runs.cluster_requeue import requeue_if_warned_while_starting
    from workbench.runs.outcome import Outcome, write_outcome
    from workbench.runs.slurm import job_state

    env = {**os.environ, **slurm}
    # The batch script says it started: a job reads RUNNING once it has its node, before
    # slurmd has started its batch step, and a signal sent then is lost (a loaded make test
    # here: USR1 sent 43 ms after the allocation, the job slept its 60 s and completed).
    submitted = subprocess.run(["sbatch", "--parsable", "--requeue", "--output=/dev/null", "--wrap",
                                "touch started; exec sleep 60"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip()
    try:
        poll(lambda: getattr(job_state(job), "state", "") == "RUNNING" and (tmp_path / "started").is_file(),
             "the job's batch step to run")
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True, env=env)
        poll(lambda: not getattr(job_state(job), "active", True), "the job to end")
        ended = job_state(job)
        assert ended is not None
        assert ended.signal == signal.SIGUSR1 and ended.restarts == 0, ended
        write_outcome(tmp_path, Outcome(1, RunStatus.STOPPED, 0.0, 0, None, "stopped by SIGUSR1", 3, 0.0))
        assert not requeue_if_warned_while_starting(tmp_path, 1, job, ended)  # it ended as it should
        assert requeue_if_warned_while_starting(tmp_path, 2, job, ended)
        again = job_state(job)
        assert again is not None and again.pending and again.restarts == 1, again
    finally:
        subprocess.run(["scancel", job], env=env, capture_output=True)


def test_a_requeued_attempt_begins_again_only_when_nothing_was_trained(tmp_path: Path) -> None:
    """Slurm's warning while the first attempt was starting (no step, no checkpoint): the
    requeued attempt begins again; a checkpoint that does not load, or an attempt that
    trained steps, still refuses."""
    from workbench.runs.outcome import Outcome, write_outcome
    from workbench.runs.train import _stopped_before_training

    write_outcome(tmp_path, Outcome(1, RunStatus.STOPPED, 0.0, 0, None, "stopped by SIGUSR1", 0, 0.0))
    assert _stopped_before_training(tmp_path, 2)
    assert not _stopped_before_training(tmp_path, 3)  # attempt 2 left no outcome: it may have trained
    write_outcome(tmp_path, Outcome(2, RunStatus.STOPPED, 0.0, 0, None, "stopped by SIGUSR1", 5, 0.0))
    assert not _stopped_before_training(tmp_path, 3)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-000000000.pt").write_bytes(b"torn")
    assert not _stopped_before_training(tmp_path, 2)


def test_a_job_killed_with_scancel_is_interrupted_and_resumable(project: Path, slurm: dict[str, str]) -> None:
    run_id = _launch(project, slurm, "--on", "here", "-s", "epochs=200")
    poll(lambda: run_row(project, run_id).status is RunStatus.RUNNING, "the job to run")
    job = _jobs(project, run_id)[-1]["job_id"]
    # --batch: SIGKILL itself reaches the trainer (a plain scancel terminates with SIGTERM first).
    subprocess.run(["scancel", "--batch", "--signal=KILL", job], check=True, env=_env(project, slurm))
    row = wait_ended(project, [run_id])[run_id]
    assert row.status is RunStatus.INTERRUPTED and "SIGKILL" in (row.error or ""), row.error
    assert row.status.is_resumable
    outcome = json.loads((Path(row.run_dir) / "attempts" / "1" / "outcome.json").read_text())
    assert outcome["status"] == "interrupted"


def test_sbatch_refusing_leaves_nothing_behind(project: Path, slurm: dict[str, str]) -> None:
    toml = project / "workbench.toml"
    toml.write_text(toml.read_text().replace('partition = "debug"', 'partition = "no-such-partition"'))
    result = wb(project, "run", "SineRegression", "--on", "here", env=_env(project, slurm))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sbatch refused the job" in lines[0] and "partition" in lines[0].lower(), result.stderr
    assert_nothing_written(project)


def test_a_pending_job_shows_its_reason_and_a_stop_cancels_it(project: Path, slurm: dict[str, str]) -> None:
    env = _env(project, slurm)
    blocker = subprocess.run(["sbatch", "--parsable", "--exclusive", "--output=/dev/null", "--wrap", "sleep 120"],
                             capture_output=True, text=True, env=env, cwd=project)
    assert blocker.returncode == 0, blocker.stderr
    try:
        run_id = _launch(project, slurm, "--on", "here", "-s", "epochs=2")
        reason = poll(lambda: (run_row(project, run_id).status_reason or "").partition("PENDING")[1]
                      and run_row(project, run_id).status_reason, "the job's pending reason in the row")
        assert run_row(project, run_id).status is RunStatus.QUEUED
        assert reason.startswith(f"slurm job {_jobs(project, run_id)[0]['job_id']}: PENDING ("), reason
        shown = wb(project, "show", run_id, env=env)
        assert "queued" in shown.stdout and "PENDING (" in shown.stdout, shown.stdout
        # rm while the job exists and its watcher is dead: refused in one line, nothing deleted
        # (the job would start later and write into a deleted folder).
        watcher = run_row(project, run_id).supervisor_pid
        assert watcher
        os.kill(watcher, signal.SIGKILL)
        refused = wb(project, "rm", run_id, "--yes", env=env)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode != 0 and len(lines) == 1, refused.stderr
        assert f"slurm job {_jobs(project, run_id)[0]['job_id']} is still PENDING" in lines[0], lines[0]
        assert f"workbench stop {run_id}" in lines[0], lines[0]
        assert Path(run_row(project, run_id).run_dir or "").is_dir()
        # the app deletes through remove_run: the same refusal
        from workbench.errors import WorkbenchError
        from workbench.project import load_project
        from workbench.runs.control import remove_run

        with index_of(project) as index, pytest.raises(WorkbenchError, match=r"is still PENDING.*; stop it first"):
            remove_run(load_project(project), index, index.get_run(run_id))
        assert Path(run_row(project, run_id).run_dir or "").is_dir()
        assert wb(project, "stop", run_id, env=env).returncode == 0  # adopts the run, then cancels its job
        row = wait_ended(project, [run_id])[run_id]
        assert row.status is RunStatus.STOPPED and row.started_at is None, row.error
        with index_of(project) as index:
            assert "never started" in [e for e in index.events(run_id) if e.kind == "stopped"][0].message
    finally:
        subprocess.run(["scancel", blocker.stdout.strip()], env=env, capture_output=True)


def test_a_run_whose_watcher_died_is_adopted_by_ls_without_losing_a_point(project: Path, slurm: dict[str, str]) -> None:
    commit_slow_sine(project, _env(project, slurm))  # 720 steps of 0.01 s or more: still running when adopted
    run_id = _launch(project, slurm, "--on", "here", "-s", "epochs=60", "-s", "pause=0.01", task="SlowSine")
    poll(lambda: run_row(project, run_id).status is RunStatus.RUNNING, "the job to run")
    watcher = run_row(project, run_id).supervisor_pid
    assert watcher
    os.kill(watcher, signal.SIGKILL)
    env = {**_env(project, slurm), "WORKBENCH_STALE_AFTER": "0"}
    first = wb(project, "ls", env=env)
    assert first.returncode == 0, first.stderr
    poll(lambda: run_row(project, run_id).supervisor_pid not in (None, watcher), "a new watcher")
    again = wb(project, "ls", env=env)  # a second look starts no second watcher
    assert again.returncode == 0
    row = wait_ended(project, [run_id])[run_id]
    assert row.status is RunStatus.COMPLETED, row.error
    with index_of(project) as index:
        steps = [s for s, _, _ in index.points(run_id, "train/loss")]
        adopted = [e for e in index.events(run_id) if e.kind == "adopted"]
    assert steps == list(range(1, row.total_steps + 1))
    assert len(adopted) == 1, [e.message for e in adopted]


def test_a_two_process_ddp_job_ends_with_a_local_ddp_runs_weights(project: Path, slurm: dict[str, str]) -> None:
    ddp = ["--backend", "ddp", "--nproc", "2", "-s", "epochs=3"]
    local = _launch(project, slurm, *ddp)
    remote = _launch(project, slurm, "--on", "here", *ddp)
    done = wait_ended(project, [local, remote])
    assert done[local].status is RunStatus.COMPLETED, done[local].error
    assert done[remote].status is RunStatus.COMPLETED, done[remote].error
    name, state = _final_weights(done[remote].run_dir)
    base_name, base_state = _final_weights(done[local].run_dir)
    assert name == base_name
    _assert_equal(state["model"], base_state["model"], "model")
