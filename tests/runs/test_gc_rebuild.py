"""``workbench gc`` and ``workbench index rebuild`` after the index was lost.

Real runs in a real project (two completed, one stopped, one still training), then the index
file is deleted, as a user might: ``ls`` says what happened, ``gc`` refuses to delete the
runs, ``index rebuild`` brings them back with their statuses, configs and snapshots, and the
stopped one resumes. The races of ``gc`` with a launch in progress and a live trainer are
played with real locks and a real training process.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from runs_helpers import (
    CLI,
    SLOW_TASK,
    git_env,
    index_of,
    invoke,
    launch,
    run_row,
    train_loss_steps,
    wait_ended,
    wait_training,
    wb,
)

from workbench.checkpoint_names import checkpoint_folder, step_files
from workbench.project import load_project
from workbench.runs import LaunchRequest
from workbench.runs import launch as launch_api
from workbench.runs.housekeeping import apply_gc, plan_gc
from workbench.runs.locks import LAUNCH_LOCK, FileLock
from workbench.runs.outcome import Outcome, read_outcome, write_outcome
from workbench.runs.rebuild import NO_OUTCOME_ERROR
from workbench.runs.spec import read_spec, write_spec
from workbench.snapshot import list_refs
from workbench.store import RunStatus

pytestmark = pytest.mark.slow

PROJECT_FILES = {"tasks/slow.py": SLOW_TASK}

#: Far more steps than any test waits for (each sleeps 50 ms); the teardown kills what is left.
LONG = ("Slow", "-s", "epochs=1000", "-s", "samples=2000")
QUICK = ("SineRegression", "-s", "epochs=1", "-s", "samples=64")


def _refs(project: Path) -> dict[str, str]:
    return list_refs(project, state_dir=project / ".workbench")


def _delete_index(project: Path) -> None:
    """What a user does: remove the index file (and SQLite's companions)."""
    for suffix in ("", "-wal", "-shm"):
        path = project / ".workbench" / f"index.db{suffix}"
        if path.exists():
            path.unlink()


def _kill_tree(pids: list[int | None], run_id: str) -> None:
    """SIGKILL these processes (if they are still this run's) and their children."""
    procs: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            proc = psutil.Process(int(pid or 0))
            if run_id in " ".join(proc.cmdline()):
                procs[proc.pid] = proc
                procs.update({c.pid: c for c in proc.children(recursive=True)})
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
            continue
    for proc in procs.values():
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(procs.values()), timeout=10)


@pytest.fixture(scope="module")
def lost(module_project: Path) -> Iterator[dict[str, Any]]:
    """Two completed runs, a stopped one and a live one; then index.db is deleted."""
    project = module_project
    ids = {name: launch(project, *QUICK, "--name", name)["id"] for name in ("done1", "done2")}
    ids["paused"] = launch(project, *LONG, "--name", "paused")["id"]
    ids["alive"] = launch(project, *LONG, "--name", "alive")["id"]
    alive = wait_training(project, ids["alive"], min_step=2)
    try:
        wait_training(project, ids["paused"], min_step=2)
        assert wb(project, "stop", ids["paused"]).returncode == 0
        rows = wait_ended(project, [ids["done1"], ids["done2"], ids["paused"]])
        assert [rows[ids[n]].status for n in ("done1", "done2", "paused")] == ["completed", "completed", "stopped"]
        rows[ids["alive"]] = run_row(project, ids["alive"])
        _delete_index(project)
        yield {"ids": ids, "rows": rows}
    finally:
        # Its row is gone by the end (the teardown of module_project cannot find its pids).
        _kill_tree([alive.supervisor_pid, alive.pid], ids["alive"])


def test_ls_says_the_index_is_empty_and_points_at_rebuild(module_project: Path, lost: dict[str, Any]) -> None:
    result = invoke(module_project, "ls")

    assert result.exit_code == 0, result.output
    assert "holds no runs, but 4 run folder(s)" in result.stdout
    assert "workbench index rebuild" in result.stdout
    assert "no runs yet" not in result.stdout


def test_gc_refuses_to_delete_the_runs_of_a_lost_index(module_project: Path, lost: dict[str, Any]) -> None:
    ids = lost["ids"]
    refs_before = _refs(module_project)

    result = invoke(module_project, "gc", "--yes")

    assert result.exit_code == 2, result.output
    error = result.stderr.strip()
    assert error.startswith("error: not removing anything") and "\n" not in error
    assert "`workbench index rebuild`" in error and "--force" in error
    assert f"leaving run folder {ids['alive']}: a training process holds it" in result.stdout
    for run_id in ids.values():
        assert (module_project / ".workbench" / "runs" / run_id / "run.toml").is_file()
    assert _refs(module_project) == refs_before and set(ids.values()) <= set(refs_before)


def test_index_rebuild_brings_the_runs_back(module_project: Path, lost: dict[str, Any]) -> None:
    ids, before = lost["ids"], lost["rows"]

    result = invoke(module_project, "index", "rebuild")

    assert result.exit_code == 0, result.output
    assert "4 run(s) rebuilt" in result.stdout and "cannot be recovered" in result.stdout
    assert "`workbench resume` works" in result.stdout
    expected = {"done1": "completed", "done2": "completed", "paused": "stopped", "alive": "running"}
    with index_of(module_project) as index:
        for name, status in expected.items():
            row, old = index.get_run(ids[name]), before[ids[name]]
            assert row is not None, name
            assert (row.status, row.name, row.task, row.attempt) == (status, name, old.task, 1)
            assert row.config == old.config and row.snapshot_commit == old.snapshot_commit
            assert (row.device, row.backend, row.nproc, row.precision) == \
                (old.device, old.backend, old.nproc, old.precision)
            assert 0 <= old.created_at - row.created_at < 30  # the id's time: when the launch began
            assert row.run_dir == old.run_dir
            assert [e.kind for e in index.events(row.id)] == ["rebuilt"]
            if status != "running":
                assert (row.exit_code, row.ended_at) == (0, pytest.approx(old.ended_at))
        assert index.get_run(ids["done1"]).config["samples"] == 64
        assert index.get_run(ids["alive"]).pid == before[ids["alive"]].pid  # the trainer lock's holder
        assert index.get_run(ids["paused"]).step == before[ids["paused"]].step
        assert any(a["path"].startswith("checkpoints/") for a in index.artifacts(ids["paused"]))
    again = invoke(module_project, "index", "rebuild")
    assert again.exit_code == 0 and "kept 4 run(s)" in again.stdout and "nothing to rebuild" in again.stdout
    listed = invoke(module_project, "ls", "--json")
    assert {r["id"] for r in json.loads(listed.stdout)} == set(ids.values())


def test_the_stopped_run_resumes_after_the_rebuild(module_project: Path, lost: dict[str, Any]) -> None:
    run_id = lost["ids"]["paused"]
    run_dir = Path(run_row(module_project, run_id).run_dir)
    checkpoint_step = step_files(checkpoint_folder(run_dir))[0][0]

    result = wb(module_project, "resume", "paused")

    assert result.returncode == 0, result.stderr
    row = wait_training(module_project, run_id, min_step=checkpoint_step + 2)
    assert row.attempt == 2
    assert wb(module_project, "stop", run_id).returncode == 0
    row = wait_ended(module_project, [run_id])[run_id]
    assert (row.status, row.attempt) == ("stopped", 2)
    outcome = read_outcome(run_dir, 2)
    assert outcome is not None and outcome.status is RunStatus.STOPPED
    # The curve before the checkpoint was in the lost index; the new attempt continues after it.
    steps = train_loss_steps(module_project, run_id)
    assert steps == list(range(checkpoint_step + 1, row.step + 1))


def test_gc_leaves_the_folder_of_a_live_trainer(module_project: Path, lost: dict[str, Any]) -> None:
    ids = lost["ids"]
    with index_of(module_project) as index:
        index.delete_run(ids["alive"])  # its folder has no row now, but its trainer lives
        index.delete_run(ids["done1"])  # an orphan gc may remove
    runs = module_project / ".workbench" / "runs"

    result = invoke(module_project, "gc", "--yes")

    assert result.exit_code == 0, result.output
    assert f"leaving run folder {ids['alive']}: a training process holds it" in result.stdout
    assert "removed 1 run folder(s) and 1 snapshot ref(s)" in result.stdout
    assert (runs / ids["alive"] / "run.toml").is_file() and ids["alive"] in _refs(module_project)
    assert not (runs / ids["done1"]).exists() and ids["done1"] not in _refs(module_project)
    for name in ("done2", "paused"):
        assert (runs / ids[name] / "checkpoints").is_dir()


# -- cheap runs: made by the launch API without starting them -----------------------------


def _made(project: Path, *names: str) -> list[str]:
    """Launch runs of SineRegression without starting them (folder, snapshot, row)."""
    loaded = load_project(project)
    return [launch_api(loaded, LaunchRequest("SineRegression", name=name), start=False).id for name in names]


def test_gc_leaves_a_folder_whose_launch_is_in_progress(project: Path) -> None:
    keep1, keep2, busy, orphan = _made(project, "keep1", "keep2", "busy", "orphan")
    with index_of(project) as index:
        index.delete_run(busy)  # as if its launch had not written the row yet
        index.delete_run(orphan)
    runs = project / ".workbench" / "runs"
    lock = FileLock(runs / busy / LAUNCH_LOCK).acquire()
    try:
        result = invoke(project, "gc", "--yes")

        assert result.exit_code == 0, result.output
        assert f"leaving run folder {busy}: a launch is still writing it" in result.stdout
        assert (runs / busy / "run.toml").is_file() and busy in _refs(project)
        assert not (runs / orphan).exists() and orphan not in _refs(project)
        assert {keep1, keep2} <= set(_refs(project)) and (runs / keep1).is_dir() and (runs / keep2).is_dir()
    finally:
        lock.release()
    # The launch takes its lock between gc's look and its removal: the folder stays.
    loaded = load_project(project)
    with index_of(project) as index:
        plan = plan_gc(loaded, index)
        assert [p.name for p in plan.folders] == [busy]
        with FileLock(runs / busy / LAUNCH_LOCK):
            result = apply_gc(loaded, index, plan)
    assert result.folders == () and result.refs == ()
    assert result.kept == ((busy, "a launch is still writing it (its launch lock is held)"),)
    assert (runs / busy / "run.toml").is_file() and busy in _refs(project)


def test_gc_lists_and_asks_before_removing(project: Path) -> None:
    kept, doomed = _made(project, "kept", "doomed")
    with index_of(project) as index:
        index.delete_run(doomed)
    folder = project / ".workbench" / "runs" / doomed

    dry = invoke(project, "gc", "--dry-run")
    no_terminal = invoke(project, "gc")

    assert dry.exit_code == 0 and str(folder) in dry.stdout and doomed in dry.stdout
    assert no_terminal.exit_code == 2
    assert no_terminal.stderr.strip() == ("error: not removing 1 run folder(s) and 1 snapshot ref(s) "
                                          "without confirmation: pass --yes (or --dry-run to only list them)")
    assert folder.is_dir()
    for answer, removed in (("n", False), ("y", True)):
        out = _gc_on_a_terminal(project, answer)
        assert "remove 1 run folder(s) and 1 snapshot ref(s)?" in out
        assert folder.exists() is not removed and (doomed in _refs(project)) is not removed
    assert (project / ".workbench" / "runs" / kept).is_dir() and kept in _refs(project)


def _gc_on_a_terminal(project: Path, answer: str) -> str:
    """``workbench gc`` with a terminal on stdin that answers ``answer``."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*CLI, "gc"], cwd=project, env=git_env(project.parent), stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        os.write(master, f"{answer}\n".encode())
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    return out


def test_gc_force_removes_the_runs_of_a_lost_index(project: Path) -> None:
    (run_id,) = _made(project, "gone")
    _delete_index(project)
    folder = project / ".workbench" / "runs" / run_id

    refused = invoke(project, "gc", "--yes")
    forced = invoke(project, "gc", "--yes", "--force")

    assert refused.exit_code == 2 and "index rebuild" in refused.stderr
    assert forced.exit_code == 0, forced.output
    assert "removed 1 run folder(s) and 1 snapshot ref(s)" in forced.stdout
    assert not folder.exists() and run_id not in _refs(project)


def test_rebuild_skips_what_it_cannot_read_and_drops_a_taken_name(project: Path) -> None:
    (first,) = _made(project, "same")
    with index_of(project) as index:
        index.delete_run(first)
    (second,) = _made(project, "same")  # the name is free again, and taken
    runs = project / ".workbench" / "runs"
    (runs / "brokenspec01").mkdir()
    (runs / "brokenspec01" / "run.toml").write_text("this is [[[ not toml")
    (runs / "nospecatall1").mkdir()
    old = time.time() - 3600
    os.utime(runs / "nospecatall1", (old, old))

    result = invoke(project, "index", "rebuild")

    assert result.exit_code == 1, result.output
    assert f"rebuilt {first}" in result.stdout
    assert "its name 'same' belongs to another run now; it has none" in result.stdout
    assert "kept 1 run(s) already in the index" in result.stdout
    skipped = result.stderr.splitlines()
    assert len(skipped) == 2
    assert skipped[0].startswith("skipped brokenspec01: ") and "unreadable" in skipped[0]
    assert skipped[1].startswith("skipped nospecatall1: ") and "missing" in skipped[1]
    with index_of(project) as index:
        row = index.get_run(first)
        assert row is not None and row.name is None
        assert (row.status, row.attempt, row.error) == ("interrupted", 1, NO_OUTCOME_ERROR)
        assert index.get_run(second).name == "same"


def test_rebuild_takes_the_last_attempt_from_outcomes_and_the_log(project: Path) -> None:
    failed, restarted = _made(project, "failed", "restarted")
    runs = project / ".workbench" / "runs"
    now = time.time()
    write_outcome(runs / failed, Outcome(1, RunStatus.STOPPED, now - 60, 0, None, "user", 10, now - 120))
    write_outcome(runs / failed, Outcome(2, RunStatus.FAILED, now - 5, 1, None, "RuntimeError: boom", 12, now - 30))
    write_outcome(runs / restarted, Outcome(1, RunStatus.STOPPED, now - 60, 0, None, "", 10, now - 120))
    (runs / restarted / "output.log").write_bytes(
        "\n=== attempt 1 · x ===\nstep\n\n=== attempt 2 · y ===\nkilled\n".encode())
    _delete_index(project)

    result = invoke(project, "index", "rebuild")

    assert result.exit_code == 0, result.output
    with index_of(project) as index:
        a, b = index.get_run(failed), index.get_run(restarted)
    assert (a.status, a.attempt, a.error, a.exit_code, a.step) == ("failed", 2, "RuntimeError: boom", 1, 12)
    assert a.started_at == pytest.approx(now - 120) and a.ended_at == pytest.approx(now - 5)
    assert (b.status, b.attempt, b.error) == ("interrupted", 2, NO_OUTCOME_ERROR)


def test_rebuild_puts_an_evaluation_back_under_its_run(project: Path) -> None:
    parent, child = _made(project, "parent", "child")
    runs = project / ".workbench" / "runs"
    spec = read_spec(runs / child)
    spec.evaluation_of, spec.steps = parent, ["test"]
    spec.weights = str(runs / parent / "checkpoints" / "step-000000010.pt")
    write_spec(runs / child, spec)
    _delete_index(project)

    result = invoke(project, "index", "rebuild")

    assert result.exit_code == 0, result.output
    with index_of(project) as index:
        (evaluation,) = index.evaluations_of(parent)
        assert evaluation.id == child and evaluation.is_evaluation
        assert evaluation.parent_checkpoint == spec.weights
        assert [r.id for r in index.list_runs()] == [parent]  # listed under its run, not among runs
