"""Sweeps on a real one-node Slurm (``scripts/slurm_up.sh``): a grid submitted as one job
array with ``--parallel`` as its ``%`` limit, each trial an ordinary cluster run (its pending
reason, a stop, a resume of the sweep as a new array); an Optuna study's trial as a cluster
run of its own; refusals that write nothing.
Tiny runs: CI runs them on every push."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.projects import assert_nothing_written, clean_env, index_of, peak_overlap, poll, run_row, wait_ended

from workbench.runs.present import waiting_text
from workbench.store import RunStatus

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TINY = ["-s", "samples=300", "-s", "epochs=2"]


def _env(project: Path, slurm: dict[str, str]) -> dict[str, str]:
    return clean_env(project.parent, **slurm)


def wb(project: Path, *args: str, env: dict[str, str]) -> Result:
    """``workbench --project PROJECT ARGS`` in this process (cheaper than a subprocess here);
    the watchers and the controller it starts are real processes."""
    from workbench.cli import cli

    return CliRunner().invoke(cli, ["--project", str(project), *args], env=env)


def test_a_grid_on_slurm_is_one_job_array_limited_by_parallel(project: Path, slurm: dict[str, str]) -> None:
    env = _env(project, slurm)
    started = wb(project, "sweep", "SineRegression", "-g", "lr=1e-3,1e-2,3e-2", *TINY, "--parallel", "2",
                 "--on", "here", "--name", "arr", "--json", env=env)
    assert started.exit_code == 0, started.stderr
    record = json.loads(started.stdout)
    job = record["spec"]["array_job"]
    assert job.isdigit() and record["spec"]["on"] == "here"
    array = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, env=env)
    assert "ArrayTaskThrottle=2" in array.stdout, array.stdout + array.stderr
    ids = [trial["id"] for trial in record["trials"]]
    assert len(ids) == 3
    with index_of(project) as index:  # trial n is array task n-1
        task_of = {run_id: int((index.get_run(run_id).name or "").rsplit("-", 1)[1]) - 1 for run_id in ids}
    last = next(run_id for run_id in ids if task_of[run_id] == 2)
    # The third task waits for the array's limit; held too (a Slurm shared with other tests may
    # pend it for other reasons first), its reason shows as a queued cluster run's does ...
    held = subprocess.run(["scontrol", "hold", f"{job}_2"], capture_output=True, text=True, env=env)
    assert held.returncode == 0, held.stderr
    poll(lambda: waiting_text(run_row(project, last)) in ("JobHeldAdmin", "JobHeldUser"), "task 2's pending reason")
    # ... a stop cancels it alone (never started), and resuming the sweep submits it again as a job of its own.
    assert wb(project, "stop", last, env=env).exit_code == 0
    stopped = wait_ended(project, [last])[last]
    assert stopped.status is RunStatus.STOPPED and stopped.started_at is None, stopped.error
    resumed = wb(project, "sweep", "resume", "arr", "--json", env=env)
    assert resumed.exit_code == 0, resumed.stderr
    actions = {t["id"]: t["action"] for t in json.loads(resumed.stdout)["trials"]}
    assert actions[last] == "requeued" and all(actions[i] == "kept" for i in ids if i != last), actions

    rows = wait_ended(project, ids)

    assert {r.status for r in rows.values()} == {RunStatus.COMPLETED}, [r.error for r in rows.values()]
    assert peak_overlap(project, ids, "started") <= 2
    for run_id, row in rows.items():
        jobs = [(j["attempt"], j["job_id"]) for j in
                json.loads((Path(row.run_dir or "") / "cluster.json").read_text())["jobs"]]
        assert jobs[0] == (1, f"{job}_{task_of[run_id]}"), jobs
        # resumed: a new job array of its own (one task here), its task 0
        assert len(jobs) == (2 if run_id == last else 1) and (run_id != last or jobs[1][1].endswith("_0")), jobs
        assert row.sweep_id == record["id"]
        assert "slurm job" in (Path(row.run_dir or "") / "output.log").read_text()  # Slurm wrote the trial's log
        with index_of(project) as index:
            steps = [s for s, _, _ in index.points(run_id, "train/loss")]
        assert steps == list(range(1, row.total_steps + 1))
    assert sorted(r.config["lr"] for r in rows.values()) == [1e-3, 1e-2, 3e-2]
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/workbench/"],
                          cwd=project, capture_output=True, text=True, check=True, env=env).stdout
    commit = record["snapshot_commit"]
    assert dict(line.split() for line in refs.splitlines()) == {f"refs/workbench/runs/{i}": commit for i in ids}


def test_an_optuna_study_on_slurm_submits_its_trial_as_a_cluster_run(project: Path, slurm: dict[str, str]) -> None:
    env = _env(project, slurm)
    started = wb(project, "sweep", "SineRegression", "--optuna", "1", "-g", "lr=loguniform(1e-3,1e-1)", *TINY,
                 "--metric", "val/loss", "--seed", "0", "--on", "here", "--name", "op", "--json", env=env)
    assert started.exit_code == 0, started.stderr
    sweep_id = json.loads(started.stdout)["id"]

    def done() -> object:
        with index_of(project) as index:
            sweep = index.get_sweep(sweep_id)
            assert sweep is not None and sweep.status != "failed", sweep and sweep.spec.get("failure")
            return sweep.status == "done" and index.runs_of_sweep(sweep_id)

    runs = poll(done, "the study to end")
    log = project / ".workbench" / "sweeps" / sweep_id / "controller.log"
    assert len(runs) == 1 and runs[0].status is RunStatus.COMPLETED, \
        ([(r.status, r.error, r.status_reason) for r in runs], log.read_text() if log.is_file() else "")
    jobs = json.loads((Path(runs[0].run_dir or "") / "cluster.json").read_text())["jobs"]
    assert [j["job_id"].isdigit() for j in jobs] == [True], jobs  # a job of its own, not an array task
    shown = json.loads(wb(project, "sweep", "show", "op", "--json", env=env).stdout)
    assert shown["best"]["id"] == runs[0].id and shown["best"]["metric"] is not None


@pytest.mark.parametrize(("change", "args", "expected"), [
    (("debug", "no-such-partition"), [], "sbatch refused the job"),
    (None, ["--on", "nowhere"], "unknown cluster 'nowhere'"),
    (None, ["--random", "1002", "--yes", "--on", "here"], "MaxArraySize"),
    (("debug", "no-such-partition"), ["--optuna", "4", "--on", "here"], "sbatch refused the job"),
])
def test_a_refused_cluster_sweep_is_one_line_and_leaves_nothing(project: Path, slurm: dict[str, str],
                                                                 change: tuple[str, str] | None, args: list[str],
                                                                 expected: str) -> None:
    if change is not None:
        toml = project / "workbench.toml"
        toml.write_text(toml.read_text().replace(*change))
    grid = ["-g", "lr=loguniform(1e-4,1e-1)"] if "--random" in args or "--optuna" in args else ["-g", "lr=1e-3,1e-2"]
    result = wb(project, "sweep", "SineRegression", *grid, *(args or ["--on", "here"]), env=_env(project, slurm))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and expected in lines[0], result.stderr
    assert_nothing_written(project)
    with index_of(project) as index:
        assert index.list_sweeps() == []
    assert not (project / ".workbench" / "sweeps").is_dir() or not any((project / ".workbench" / "sweeps").iterdir())
