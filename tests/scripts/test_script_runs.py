"""Script runs end to end: real supervisors, real scripts, the real index (``[scripts.NAME]``)."""

from __future__ import annotations

import json
from pathlib import Path

from support.projects import index_of, poll, run_row, wait_ended, wb

from workbench.runs.spec import read_spec
from workbench.store import RunStatus


def _launch(project: Path, name: str, *sets: str) -> str:
    args = ["run", name, "--json"]
    for value in sets:
        args += ["-s", value]
    done = wb(project, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def _running(project: Path, run_id: str, text: str) -> None:
    """Wait until the run's script is running and has printed ``text``."""

    def printed() -> bool:
        row = run_row(project, run_id)
        log = (Path(row.run_dir or "") / "output.log")
        output = log.read_text() if log.is_file() else ""
        assert not row.status.is_final, f"run {run_id} ended {row.status}: {row.error}\n{output}"
        return row.status is RunStatus.RUNNING and text in output

    poll(printed, f"run {run_id} to print {text!r}", timeout=90)


def test_a_script_runs_from_its_snapshot_with_captured_metrics_and_secrets_masked(project: Path) -> None:
    go = project / "go"
    run_id = _launch(project, "lm", "lr=5", "token=hunter2", f"go={json.dumps(str(go))}")
    _running(project, run_id, "waiting")
    (project / "scripts" / "helper.py").write_text('VERSION = "edited"\n')  # the project changes ...
    go.write_text("")
    row = wait_ended(project, [run_id])[run_id]
    log = (Path(row.run_dir or "") / "output.log").read_text()

    assert row.status is RunStatus.COMPLETED and row.kind == "script" and row.exit_code == 0
    assert "helper says original" in log  # ... the run keeps the snapshot's code
    assert "token ok" in log  # the script got the secret
    code = str(Path(row.run_dir or "") / "code" / "scripts" / "lm.py")
    assert row.command[1] == code and row.command[-1] == "no"
    assert "--token" in row.command and row.command[row.command.index("--token") + 1] == "***"
    assert "API_KEY=***" in row.command
    stored = (Path(row.run_dir or "") / "run.toml").read_text()
    with index_of(project) as index:
        texts = [json.dumps(row.config), *(e.message + json.dumps(e.data) for e in index.events(run_id))]
        loss = index.points(run_id, "loss")
        keys = set(index.metric_keys(run_id))
    assert "hunter2" not in stored  # a secret param never reaches run.toml ...
    assert not any("hunter2" in t or "not-for-the-index" in t for t in [*texts, *row.command])  # nor the index
    assert row.config["token"] == "***" and row.config["lr"] == 5.0
    spec = read_spec(Path(row.run_dir or ""))
    assert spec.kind == "script" and "{token}" in spec.command
    assert [(s, round(v, 2)) for s, v, _ in loss] == [(1, 7.0), (2, 3.5), (3, 2.33), (4, 1.75)]
    assert {"lr", "ppl", "ms/batch", "valid_loss", "valid_ppl", "epoch"} <= keys
    assert run_row(project, run_id).step == 5


def test_stop_ends_stopped_despite_a_nonzero_exit_and_restart_starts_attempt_2(project: Path) -> None:
    run_id = _launch(project, "lm", f"go={json.dumps(str(project / 'never'))}")
    _running(project, run_id, "waiting")
    assert wb(project, "stop", run_id).returncode == 0
    row = wait_ended(project, [run_id])[run_id]
    assert row.status is RunStatus.STOPPED and row.exit_code == 130, (row.status, row.exit_code, row.error)
    assert "Exiting from training early" in (Path(row.run_dir or "") / "output.log").read_text()

    done = wb(project, "resume", run_id)
    assert done.returncode == 0, done.stderr
    assert "restarted (scripts start over)" in done.stdout
    row = wait_ended(project, [run_id])[run_id]
    assert row.status is RunStatus.COMPLETED and row.attempt == 2
    with index_of(project) as index:
        kinds = [e.kind for e in index.events(run_id)]
        assert index.points(run_id, "loss")[0][0] == 1  # attempt 2 logged from step 1 again
    assert "restarted" in kinds and kinds.index("stopped") < kinds.index("restarted")
    log = (Path(row.run_dir or "") / "output.log").read_text()
    assert log.count("fresh start") == 2 and "=== attempt 2" in log


def test_a_failing_script_fails_with_its_last_lines(project: Path) -> None:
    run_id = _launch(project, "lm", "fail='bad batch'")
    row = wait_ended(project, [run_id])[run_id]
    assert row.status is RunStatus.FAILED and row.exit_code == 3
    assert "code 3" in (row.error or "") and "ValueError: bad batch" in (row.error or "")
    assert "Traceback (most recent call last):" in (row.traceback or "")
    assert (Path(row.run_dir or "") / "attempts" / "1" / "outcome.json").is_file()


def test_resume_passes_the_newest_checkpoint_when_the_table_declares_one(project: Path) -> None:
    run_id = _launch(project, "lmckpt", f"go={json.dumps(str(project / 'never'))}")
    _running(project, run_id, "waiting")
    wb(project, "stop", run_id)
    wait_ended(project, [run_id])
    done = wb(project, "resume", run_id)
    assert done.returncode == 0 and "resumed run" in done.stdout, done.stderr
    row = wait_ended(project, [run_id])[run_id]
    assert row.status is RunStatus.COMPLETED and row.attempt == 2
    assert "resume from ckpt-001.txt" in (Path(row.run_dir or "") / "output.log").read_text()
