"""A crash of everything in the middle of an Optuna sweep, then ``workbench sweep resume``:
the sweep's controller, the project's queue runner and every process of every trial are
SIGKILLed; the resume finishes the study with the completed trials untouched, the
interrupted ones resumed from their checkpoints, and exactly as many trials in Optuna's
journal as were asked for. Real processes, a real index, the real journal."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from support.projects import clean_env, index_of, kill_run_processes, pid_alive, poll
from support.slow_sine import commit_slow_sine
from test_sweeps import invoke, start

from workbench.runs.locks import held_by_someone
from workbench.runs.resume import step_checkpoints
from workbench.store import Run, RunStatus

optuna = pytest.importorskip("optuna")


def kill_holder(lock: Path) -> None:
    """SIGKILL the process that holds ``lock`` (its pid is the file's content), and wait for it."""
    if not held_by_someone(lock):
        return
    pid = int(lock.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # it ended meanwhile (a queue runner leaves when nothing waits)
    poll(lambda: not pid_alive(pid), f"process {pid} (holding {lock.name}) to die", timeout=30)


def sweep_runs(project: Path, sweep_id: str) -> list[Run]:
    with index_of(project) as index:
        return index.runs_of_sweep(sweep_id)


def newest_checkpoint(run: Run) -> int | None:
    """The step of the run's newest step checkpoint (``step-<N>.pt``), or None."""
    saved = step_checkpoints(Path(run.run_dir))
    return int(saved[0].stem.rsplit("-", 1)[1]) if saved else None


def freeze(runs: list[Run]) -> list[int]:
    """SIGSTOP the supervisor and trainer processes of ``runs`` (and their children); their pids."""
    frozen = []
    for run in runs:
        for pid in (run.supervisor_pid, run.pid):
            try:
                proc = psutil.Process(int(pid)) if pid else None
                if proc is None or run.id not in " ".join(proc.cmdline()):
                    continue  # gone, or the pid was reused
                for each in (proc, *proc.children(recursive=True)):
                    each.suspend()
                    frozen.append(each.pid)
            except psutil.NoSuchProcess:
                continue
    return frozen


def wait_for(project: Path, sweep_id: str, what: Callable[[], bool], message: str) -> None:
    """:func:`poll`, saying where each trial was when it gave up."""
    try:
        poll(what, message)
    except AssertionError as exc:
        where = [f"{r.id} {r.status.value} step {r.step}/{r.total_steps} {r.tags}"
                 for r in sweep_runs(project, sweep_id)]
        raise AssertionError(f"{exc}; trials: {where}") from None


def test_a_crash_of_the_controller_and_every_trial_then_resume_loses_and_redoes_nothing(project: Path) -> None:
    # 3 trials, 2 at a time, 4 epochs of 10 steps each (a checkpoint after each): trials 0
    # and 1 run together, trial 2 starts when one ends; the crash comes once one has
    # completed and every running one has a checkpoint to resume from.
    commit_slow_sine(project, clean_env(project.parent))  # 0.15 s a step: seconds between two checkpoints
    record = start(project, "SlowSine", "--optuna", "3", "-g", "lr=loguniform(1e-3,3e-2)",
                   "-s", "epochs=4", "-s", "samples=320", "--parallel", "2", "--seed", "1", "--metric", "val/loss",
                   "--name", "crash")
    sweep_id = record["id"]
    folder = project / ".workbench" / "sweeps" / sweep_id
    try:
        def crash_point() -> bool:
            runs = sweep_runs(project, sweep_id)
            running = [r for r in runs if r.status is RunStatus.RUNNING]
            saved = [newest_checkpoint(r) for r in running]
            # one trial completed; every running one has a checkpoint, one has half of its steps to go
            return any(r.status is RunStatus.COMPLETED for r in runs) and None not in saved and \
                any(step <= (r.total_steps or 0) / 2 for r, step in zip(running, saved))

        wait_for(project, sweep_id, crash_point, "a completed trial and a running one past its first checkpoint")
        # The crash: the trials' processes are frozen at once (none finishes meanwhile), the
        # controller and the queue runner die, then every trial's processes.
        frozen = freeze(sweep_runs(project, sweep_id))
        kill_holder(folder / "controller.lock")
        kill_holder(project / ".workbench" / "queue.lock")
        killed = kill_run_processes(project)
        assert frozen and set(frozen) <= set(killed)
        assert not any(pid_alive(pid) for pid in killed)

        before = {r.id: r for r in sweep_runs(project, sweep_id)}
        completed = [i for i, r in before.items() if r.status is RunStatus.COMPLETED]
        crashed = [i for i, r in before.items() if r.status is RunStatus.RUNNING]  # the index does not know yet
        assert completed and crashed
        with index_of(project) as index:
            events = {i: [(e.kind, e.time, e.message) for e in index.events(i)] for i in completed}

        resumed = json.loads(invoke(project, "sweep", "resume", "crash", "--json").output)
        actions = {t["id"]: t["action"] for t in resumed["trials"]}
        assert {i: actions[i] for i in completed} == dict.fromkeys(completed, "kept")
        assert {i: actions[i] for i in crashed} == dict.fromkeys(crashed, "resumed")

        def done() -> bool:
            with index_of(project) as index:
                return index.get_sweep(sweep_id).status == "done"

        wait_for(project, sweep_id, done, "the resumed study to tell its 3 trials")
    finally:
        kill_holder(folder / "controller.lock")

    after = {r.id: r for r in sweep_runs(project, sweep_id)}
    with index_of(project) as index:
        # completed trials untouched: the same attempt, the same events
        assert all(after[i].attempt == 1 and after[i].status is RunStatus.COMPLETED for i in completed)
        assert {i: [(e.kind, e.time, e.message) for e in index.events(i)] for i in completed} == events
        # interrupted ones resumed from their checkpoints, one curve each
        for i in crashed:
            assert after[i].status is RunStatus.COMPLETED and after[i].attempt == 2
            assert "resumed" in [e.kind for e in index.events(i)]
            steps = [step for step, _, _ in index.points(i, "train/loss")]
            assert steps == sorted(set(steps)) and steps[-1] == after[i].total_steps
        values = {i: index.last_metrics(i)["val/loss"] for i in after}

    # Optuna's journal: exactly the 3 trials asked for, one run each, none lost or redone
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "study.journal")))
    trials = optuna.load_study(study_name=sweep_id, storage=storage).trials
    assert len(trials) == 3 and len(after) == 3
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    by_trial = {int(tag.rsplit("-", 1)[1]): run for run in after.values() for tag in run.tags
                if tag.startswith("optuna-trial-")}
    assert sorted(by_trial) == [t.number for t in trials] == [0, 1, 2]
    for t in trials:
        run = by_trial[t.number]
        assert run.config["lr"] == t.params["lr"] and values[run.id] == pytest.approx(t.value)
