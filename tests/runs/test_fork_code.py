"""workbench fork --code snapshot|worktree: which code a fork runs, and its device/precision/tags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.project import load_project
from workbench.runs import LaunchRequest, fork_run, launch
from workbench.runs.spec import read_spec
from workbench.store import RunIndex

PROBE = {"devices": ["cpu"], "default": "cpu", "torch": "test"}


def _parent(root: Path) -> tuple[object, RunIndex, object]:
    """A launched (not started) SineRegression run with one step checkpoint on disk."""
    project = load_project(root)
    index = RunIndex(project.index_path)
    row = launch(project, LaunchRequest(task="SineRegression", overrides=["epochs=1"], tags=["base"]),
                 index=index, probe=PROBE, start=False)
    folder = Path(row.run_dir) / "checkpoints"
    folder.mkdir(exist_ok=True)
    (folder / "step-000000010.pt").write_bytes(b"not loaded here: no training process starts")
    return project, index, row


def test_a_fork_runs_the_parents_snapshot_unless_asked_for_the_working_tree(project: Path) -> None:
    proj, index, parent = _parent(project)
    task_file = project / "tasks" / "sine.py"
    task_file.write_text(task_file.read_text() + "\n# changed after the parent ran\n")

    same = fork_run(proj, index, parent, overrides=["lr=0.5"], start=False)
    assert same.snapshot_commit == parent.snapshot_commit and same.git_dirty == parent.git_dirty
    assert "changed after the parent ran" not in (Path(same.run_dir) / "code" / "tasks" / "sine.py").read_text()
    assert list(same.tags) == ["base"] and same.precision == parent.precision

    now = fork_run(proj, index, parent, code="worktree", precision="bf16-mixed", tags=["b", "c"], name="tree-fork",
                   probe=PROBE, start=False)
    assert now.snapshot_commit not in (None, parent.snapshot_commit) and now.git_dirty
    assert "changed after the parent ran" in (Path(now.run_dir) / "code" / "tasks" / "sine.py").read_text()
    spec = read_spec(Path(now.run_dir))
    assert spec.snapshot == now.snapshot_commit and spec.precision == "bf16-mixed" and list(spec.tags) == ["b", "c"]
    assert (now.name, now.parent_id, list(now.tags)) == ("tree-fork", parent.id, ["b", "c"])
    launched = [e for e in index.events(now.id) if e.kind == "launched"]
    assert "on the working tree" in launched[0].message and launched[0].data["code"] == "worktree"

    with pytest.raises(WorkbenchError, match="bad --code 'head'"):
        fork_run(proj, index, parent, code="head", start=False)
    with pytest.raises(WorkbenchError, match="16-mixed' needs a CUDA GPU"):
        fork_run(proj, index, parent, precision="16-mixed", probe=PROBE, start=False)
    index.close()


def test_the_cli_takes_code_worktree_and_refuses_another_choice(project: Path) -> None:
    proj, index, parent = _parent(project)
    index.close()
    cli = [sys.executable, "-m", "workbench.cli", "--project", str(project), "fork", parent.id]
    bad = subprocess.run([*cli, "--code", "head"], capture_output=True, text=True)
    assert bad.returncode != 0 and "'head' is not one of 'snapshot', 'worktree'" in bad.stderr
    assert "Traceback" not in bad.stderr
