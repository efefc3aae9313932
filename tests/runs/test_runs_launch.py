"""Launching runs from the CLI with real processes: ``run --wait --json``, metrics, DDP on
CPU, a failing task, logs, the code snapshot, and ``rm``.

The runs of this module start together, once (the ``batch`` fixture), and the tests look
at what they left in the project's real index and run folders.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_helpers import (
    BROKEN_TASK,
    CHATTY_TASK,
    PATIENCE,
    end_cli,
    index_of,
    invoke,
    launch,
    run_row,
    train_loss_steps,
    wait_ended,
    wb,
    wb_start,
)

from workbench.snapshot import list_refs

pytestmark = pytest.mark.slow

PROJECT_FILES = {"tasks/broken.py": BROKEN_TASK, "tasks/chatty.py": CHATTY_TASK}

#: samples=256, batch_size 32: 8 steps per epoch on one process, 4 per rank on two.
SINGLE = ("SineRegression", "-s", "epochs=2", "-s", "samples=256", "--name", "single", "--tag", "smoke")
DDP = ("SineRegression", "--backend", "ddp", "--nproc", "2", "--device", "cpu",
       "-s", "epochs=1", "-s", "samples=256", "--name", "ddp")

RECORD_KEYS = {"id", "name", "task", "status", "device", "backend", "nproc", "config", "created_at",
               "started_at", "ended_at", "attempt", "run_dir", "exit_code", "error", "metrics"}


class Batch:
    """What the batch of runs left: each CLI's exit code, stdout and stderr, by run name."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.results: dict[str, subprocess.CompletedProcess[str]] = {}
        self.ids: dict[str, str] = {}

    def id(self, name: str) -> str:
        return self.ids[name]


@pytest.fixture(scope="module")
def batch(module_project: Path) -> Iterator[Batch]:
    """Start every run of this module at once, then wait for all of them."""
    project = module_project
    out = Batch(project)
    procs = {
        "single": wb_start(project, "run", *SINGLE, "--wait", "--json"),
        "ddp": wb_start(project, "run", *DDP, "--wait", "--json"),
        "broken": wb_start(project, "run", "Broken", "-s", "samples=64", "-s", "epochs=1",
                           "--name", "broken", "--follow"),
    }
    try:
        # The snapshot run: launched, then its task file changes under it.
        chatty = launch(project, "Chatty", "-s", "samples=64", "-s", "epochs=1", "--name", "chatty")
        out.ids["chatty"] = chatty["id"]
        task_file = project / "tasks" / "chatty.py"
        task_file.write_text(task_file.read_text().replace("version: original", "version: edited")
                             + "\nraise RuntimeError('the edited file must not be imported by the run')\n")
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=PATIENCE)
            out.results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        with index_of(project) as index:
            for row in index.list_runs():
                out.ids.setdefault(row.name, row.id)
        wait_ended(project, [out.ids["chatty"]])
        yield out
    finally:
        end_cli(procs.values())


def _record(batch: Batch, name: str) -> dict[str, Any]:
    result = batch.results[name]
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_run_wait_json_completes_with_the_documented_record(batch: Batch) -> None:
    record = _record(batch, "single")

    assert RECORD_KEYS <= set(record)
    assert record["status"] == "completed"
    assert (record["task"], record["name"], record["backend"], record["nproc"]) == \
        ("SineRegression", "single", "single", 1)
    assert record["device"] == "auto" and record["attempt"] == 1
    assert record["resolved_device"] == "cpu"  # what auto chose here (its reproducibility record)
    assert record["exit_code"] == 0 and record["error"] is None
    assert record["config"]["epochs"] == 2 and record["config"]["samples"] == 256
    assert record["config"]["lr"] == 3e-3  # defaults are resolved into the record
    assert record["tags"] == ["smoke"]
    assert record["created_at"] <= record["started_at"] <= record["ended_at"]
    assert all(t.endswith("Z") for t in (record["created_at"], record["started_at"], record["ended_at"]))
    assert record["progress"] == {"step": 16, "total": 16, "epoch": 2}
    assert Path(record["run_dir"]) == batch.project / ".workbench" / "runs" / record["id"]
    assert (Path(record["run_dir"]) / "run.toml").is_file()
    assert {"train/loss", "val/loss"} <= set(record["metrics"])
    assert all(isinstance(v, float) and math.isfinite(v) for v in record["metrics"].values())
    assert record["git"]["branch"] == "main" and record["git"]["snapshot"]


def test_metrics_csv_is_the_loss_curve_one_point_per_step(batch: Batch) -> None:
    result = invoke(batch.project, "metrics", "single", "--key", "train/loss")

    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["step"]) for r in rows] == list(range(1, 17))
    assert {r["key"] for r in rows} == {"train/loss"}
    losses = [float(r["value"]) for r in rows]
    assert all(math.isfinite(v) and v >= 0 for v in losses)
    assert min(losses[-4:]) < losses[0]  # it is a loss curve: training went somewhere


def test_metrics_json_has_every_key_and_matches_the_csv(batch: Batch) -> None:
    as_json = invoke(batch.project, "metrics", batch.id("single"), "--format", "json")
    as_csv = invoke(batch.project, "metrics", batch.id("single"))

    assert as_json.exit_code == 0 and as_csv.exit_code == 0
    series = json.loads(as_json.stdout)
    assert {"train/loss", "val/loss"} <= set(series)
    assert [p["step"] for p in series["train/loss"]] == list(range(1, 17))
    assert set(series["train/loss"][0]) == {"step", "value", "time"}
    csv_points = {(r["key"], int(r["step"])): float(r["value"])
                  for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    json_points = {(k, p["step"]): p["value"] for k, points in series.items() for p in points}
    assert csv_points == json_points


def test_ddp_on_two_cpu_processes_completes_and_logs_each_step_once(batch: Batch) -> None:
    record = _record(batch, "ddp")

    assert record["status"] == "completed", record["error"]
    assert (record["backend"], record["nproc"], record["device"]) == ("ddp", 2, "cpu")
    # 256 samples over 2 ranks, batches of 32: 4 steps; only rank 0 writes the index.
    assert record["progress"]["total"] == 4
    assert train_loss_steps(batch.project, record["id"]) == [1, 2, 3, 4]
    log = (Path(record["run_dir"]) / "output.log").read_text()
    assert "Traceback" not in log


def test_a_failing_task_ends_failed_with_its_error_and_traceback(batch: Batch) -> None:
    follow = batch.results["broken"]
    assert follow.returncode == 1  # --follow: not completed
    assert "Traceback" not in follow.stderr  # the CLI itself did not crash

    shown = invoke(batch.project, "show", "broken", "--json")
    assert shown.exit_code == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["status"] == "failed"
    assert record["exit_code"] == 1
    assert record["error"] == "RuntimeError: boom in batch 0"
    assert "Traceback (most recent call last)" in record["traceback"]
    assert "code/tasks/broken.py" in record["traceback"]  # imported from the snapshot
    assert [e["kind"] for e in record["events"]][-1] == "failed"
    text = invoke(batch.project, "show", "broken")
    assert "failed" in text.stdout and "boom in batch 0" in text.stdout


def test_logs_prints_the_runs_output(batch: Batch) -> None:
    broken = invoke(batch.project, "logs", "broken")
    chatty = invoke(batch.project, "logs", batch.id("chatty")[:10])

    assert broken.exit_code == 0 and chatty.exit_code == 0
    assert "=== attempt 1" in broken.stdout
    assert "RuntimeError: boom in batch 0" in broken.stdout
    assert "chatty code version: original" in chatty.stdout
    # every background run prints a line per epoch, as a fit in a terminal does
    assert "epoch 1/1  step " in chatty.stdout and "val/loss" in chatty.stdout, chatty.stdout


def test_a_run_keeps_running_the_code_it_was_launched_with(batch: Batch) -> None:
    row = run_row(batch.project, batch.id("chatty"))

    assert row.status == "completed", row.error
    log = (Path(row.run_dir) / "output.log").read_text()
    assert "version: original" in log and "version: edited" not in log
    code = Path(row.run_dir) / "code" / "tasks" / "chatty.py"
    assert "version: original" in code.read_text()
    assert "version: edited" in (batch.project / "tasks" / "chatty.py").read_text()


def test_ls_json_lists_every_run_of_the_batch(batch: Batch) -> None:
    result = invoke(batch.project, "ls", "--json")

    assert result.exit_code == 0, result.stderr
    listed = {r["name"]: r for r in json.loads(result.stdout)}
    assert {n: r["status"] for n, r in listed.items()} == {
        "single": "completed", "ddp": "completed", "broken": "failed", "chatty": "completed"}
    assert all(RECORD_KEYS <= set(r) for r in listed.values())
    only_failed = json.loads(invoke(batch.project, "ls", "--status", "failed", "--json").stdout)
    assert [r["name"] for r in only_failed] == ["broken"]


def test_rm_yes_removes_rows_folder_and_snapshot_ref(batch: Batch) -> None:
    project = batch.project
    run_id = batch.id("single")
    run_dir = project / ".workbench" / "runs" / run_id
    assert run_dir.is_dir() and run_id in list_refs(project, state_dir=project / ".workbench")

    result = wb(project, "rm", "single", "--yes")

    assert result.returncode == 0, result.stderr
    assert f"deleted run {run_id}" in result.stdout
    assert not run_dir.exists()
    assert run_id not in list_refs(project, state_dir=project / ".workbench")
    with index_of(project) as index:
        assert index.get_run(run_id) is None
        assert index.metric_keys(run_id) == [] and index.events(run_id) == []
        assert {r.name for r in index.list_runs()} == {"ddp", "broken", "chatty"}
    again = invoke(project, "show", run_id)
    assert again.exit_code == 2 and again.stderr.startswith("error: no run matches")
