"""Sweeps with real processes: a grid through the queue with its parallel limit, one shared
snapshot with a ref per run, refusals that write nothing, and stop then resume of a sweep."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.projects import clean_env, index_of, make_project, peak_overlap, poll, run_row, wait_ended
from support.slow_sine import commit_slow_sine

from workbench.store import RunStatus

TINY = ("-s", "epochs=1", "-s", "samples=200")


def invoke(project: Path, *args: str) -> Result:
    """``workbench --project PROJECT ARGS`` in this process (the queue runner it starts is real)."""
    from workbench.cli import cli

    result = CliRunner().invoke(cli, ["--project", str(project), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def start(project: Path, *args: str) -> dict:
    result = invoke(project, "sweep", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def refs(project: Path) -> dict[str, str]:
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/workbench/"],
                         cwd=project, capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines())


def test_a_grid_runs_through_the_queue_two_at_a_time_on_one_snapshot(project: Path) -> None:
    # 2 x 2: two run at once, two wait (each trial is a training process, ~6 s of CPU)
    record = start(project, "SineRegression", "-g", "lr=1e-3,3e-2", "-g", "hidden=16,32", *TINY,
                   "--parallel", "2", "--name", "g")
    ids = [trial["id"] for trial in record["trials"]]
    assert len(ids) == 4 and record["parallel"] == 2 and record["kind"] == "grid"

    rows = wait_ended(project, ids)

    assert {r.status for r in rows.values()} == {RunStatus.COMPLETED}
    assert peak_overlap(project, ids, "dequeued") == 2  # parallel, and never more than the limit
    assert sorted((r.config["lr"], r.config["hidden"]) for r in rows.values()) == \
        sorted((lr, h) for lr in (1e-3, 3e-2) for h in (16, 32))
    assert sorted(r.name for r in rows.values()) == [f"g-{n}" for n in range(1, 5)]
    assert all(r.sweep_id == record["id"] for r in rows.values())
    # one snapshot for the sweep; each run its own ref at that commit
    commit = record["snapshot_commit"]
    assert {r.snapshot_commit for r in rows.values()} == {commit}
    assert refs(project) == {f"refs/workbench/runs/{run_id}": commit for run_id in ids}

    shown = json.loads(invoke(project, "sweep", "show", "g", "--json").output)
    values = [t["metric"] for t in shown["trials"]]
    assert shown["metric"] == "val/loss" and None not in values and values == sorted(values)
    assert shown["best"]["id"] == shown["trials"][0]["id"]
    assert shown["counts"] == {"completed": 4} and shown["varied"] == ["lr", "hidden"]
    assert shown["status"] == "done"  # a grid has no controller to record it: shown from its trials
    table = invoke(project, "sweep", "ls").output
    assert "4: 4 completed" in table and f"val/loss {shown['best']['metric']:.4g} ({shown['best']['name']})" in table
    listed = json.loads(invoke(project, "ls", "--sweep", record["id"][:8], "--json").output)
    assert sorted(r["id"] for r in listed) == sorted(ids)
    # rm works per run: the other runs keep their refs to the shared commit
    assert invoke(project, "rm", ids[0], "--yes").exit_code == 0
    assert refs(project) == {f"refs/workbench/runs/{run_id}": commit for run_id in ids[1:]}


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> Path:
    """One project for every refusal: each must leave it as it was, so they can share it."""
    return make_project(tmp_path_factory.mktemp("refusals"), probe_cache)


@pytest.mark.parametrize("args, message", [
    (("-g", "lr=1e-3,abc"), "-g lr: item 2 (abc) is refused"),
    (("-g", "nope=1,2"), "unknown config key 'nope'"),
    (("-g", "epochs=1,0"), "-g epochs: item 2 (0) is refused"),
    (("--random", "3", "-g", "lr=loguniform(0,1)"), "bounds above 0"),
    (("--random", "3", "-g", "lr=uniform(1,1)"), "LOW must be below HIGH"),
    (("--random", "3", "-g", "hidden=intuniform(0,4)"), "-g hidden: its low bound (0) is refused"),
    (("-g", "lr=1e-3,1e-2", "--parallel", "0"), "--parallel must be 1 or more"),
    (("-g", "seed=" + ",".join(map(str, range(40))), "-g", "hidden=" + ",".join(map(str, range(1, 27)))),
     "1,040 runs, more than 1,000: pass --yes"),
    (("-g", "lr=loguniform(1e-5,1)"), "a grid needs a list of values"),
    (("-g", "lr=1e-3", "-s", "lr=2"), "both fixed (-s) and swept (-g)"),
    (("--device", "cuda:7", "-g", "lr=1e-3,1e-2"), "cuda"),
], ids=lambda value: value if isinstance(value, str) else " ".join(value)[:30])
def test_bad_input_is_one_line_and_writes_nothing(untouched: Path, args: tuple[str, ...], message: str) -> None:
    project = untouched
    result = invoke(project, "sweep", "SineRegression", *args)

    assert result.exit_code == 2
    assert message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    with index_of(project) as index:
        assert index.count_runs() == 0 and index.list_sweeps() == []
    assert refs(project) == {}
    runs_dir = project / ".workbench" / "runs"
    assert not runs_dir.is_dir() or not any(runs_dir.iterdir())


def test_stop_then_resume_a_sweep(project: Path) -> None:
    # one at a time: trial 1 (10 epochs of 29 steps at 0.03 s a step or slower: 9 s or more,
    # so that a stop delivered late still finds it training, however fast the machine; a bare
    # SineRegression of 940 steps once completed first) is stopped mid-run, trial 2 waits
    # and never starts
    commit_slow_sine(project, clean_env(project.parent))
    record = start(project, "SlowSine", "-g", "epochs=10,1", "-s", "samples=1000", "-s", "pause=0.03",
                   "--parallel", "1")
    first, second = (trial["id"] for trial in record["trials"])
    poll(lambda: run_row(project, first).status is RunStatus.RUNNING and (run_row(project, first).step or 0) >= 3,
         "trial 1 to be training")

    stopped = invoke(project, "sweep", "stop", record["id"])
    assert stopped.exit_code == 0, stopped.output
    assert "1 waiting trial(s) will not start, 1 running trial(s) asked to stop" in stopped.output
    rows = wait_ended(project, [first, second])
    assert rows[first].status is RunStatus.STOPPED and rows[second].status is RunStatus.STOPPED
    assert rows[second].started_at is None  # it never started

    resumed = json.loads(invoke(project, "sweep", "resume", record["id"], "--json").output)
    assert {t["id"]: t["action"] for t in resumed["trials"]} == {first: "resumed", second: "requeued"}
    rows = wait_ended(project, [first, second])

    assert {r.status for r in rows.values()} == {RunStatus.COMPLETED}
    assert rows[first].attempt == 2 and rows[second].attempt == 1
    assert peak_overlap(project, [first, second], "dequeued") == 1  # the sweep's limit held through the resume
    with index_of(project) as index:
        steps = [step for step, _, _ in index.points(first, "train/loss")]
        events = {run_id: len(index.events(run_id)) for run_id in (first, second)}
    assert steps == sorted(set(steps)) and steps[-1] == rows[first].total_steps  # one curve, to the end
    # resuming a finished sweep changes nothing: completed trials stay
    again = json.loads(invoke(project, "sweep", "resume", record["id"], "--json").output)
    assert {t["action"] for t in again["trials"]} == {"kept"}
    with index_of(project) as index:
        assert {run_id: len(index.events(run_id)) for run_id in (first, second)} == events
        assert [index.get_run(run_id).attempt for run_id in (first, second)] == [2, 1]
