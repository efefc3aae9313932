"""The fault-injection scenarios: each one drives real runs through the CLI and returns
what the tests check (run records, events, curves). They run concurrently (see
``resume_helpers.Campaign``); the tests in this folder assert on their results.

The runs train ``Faulty`` (``faulty_task.py``): 3 epochs of 16 batches (48 steps), a
checkpoint every 5 steps and at each epoch's end (after its validation), and at the end.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from resume_helpers import (
    Campaign,
    cli_env,
    launch,
    pid_alive,
    pids_gone,
    poll,
    run_row,
    run_snapshot,
    step_files,
    wait_ended,
    wait_held,
    wait_settled,
    wb,
    wb_json,
)

EPOCH = 16  # batches per epoch (256 samples, batch size 16)
EPOCHS = 3
TOTAL = EPOCH * EPOCHS
EVERY = 5  # the task's default every_steps
#: The steps the first attempt saves a checkpoint at: every 5 steps, each epoch's end
#: (written after the epoch's validation), and the end of training.
SAVES = sorted({s for s in range(EVERY, TOTAL + 1, EVERY)} | {EPOCH * e for e in range(1, EPOCHS + 1)})
DDP_TOTAL = TOTAL // 2  # two processes share each epoch


@dataclass(frozen=True)
class Fault:
    """Where an attempt kills itself: ``phase`` at ``step``."""

    phase: str  # batch, validate, checkpoint or machine
    step: int

    def restored_step(self) -> int:
        """The step of the last good checkpoint this fault leaves (the resume's start)."""
        k = self.step
        if self.phase in ("batch", "machine"):  # died during batch k: steps up to k-1 are done
            return max(s for s in SAVES if s <= k - 1)
        if self.phase == "validate":  # died in the validation at the end of step v's epoch
            v = -(-k // EPOCH) * EPOCH
            return max(s for s in SAVES if s < v or (s == v and s % EVERY == 0))
        if self.phase == "checkpoint":  # died writing the first checkpoint at or after step k
            crashed = min(s for s in SAVES if s >= k)
            return max(s for s in SAVES if s < crashed)
        raise ValueError(self.phase)


@dataclass(frozen=True)
class Kill:
    """A run whose first attempt dies at ``faults[0]`` and, once resumed, whose second
    attempt dies at ``faults[1]`` (if given); the next resume runs to the end."""

    faults: tuple[Fault, ...]
    loader: str = "datamodule"

    @property
    def name(self) -> str:
        return "kill-" + "-then-".join(f"{f.phase}-{f.step}" for f in self.faults) + f"-{self.loader}"

    @property
    def overrides(self) -> list[str]:
        args = ["-s", f"loader={self.loader}"]
        for prefix, fault in zip(("kill", "kill2"), self.faults):
            args += ["-s", f"{prefix}_phase={fault.phase}", "-s", f"{prefix}_at_step={fault.step}"]
        return args

    @property
    def restored_steps(self) -> list[int]:
        """The step each resume must start from (the last good checkpoint)."""
        return [f.restored_step() for f in self.faults]


def kill(*faults: tuple[str, int], loader: str = "datamodule") -> Kill:
    return Kill(tuple(Fault(p, s) for p, s in faults), loader)


#: Chosen points: each phase in first and second attempts, both loaders (an EpochSampler
#: that seeks; a plain shuffled DataLoader whose order comes from the global RNG and is
#: re-read up to the position).
FIXED_KILLS = [
    # mid-epoch 2 (restores 20); then while writing checkpoint 35 (restores 32)
    kill(("batch", 23), ("checkpoint", 35)),
    # validating epoch 1 (restores 15); then mid-epoch 3 (restores 40)
    kill(("validate", 16), ("batch", 43), loader="dataloader"),
    # writing epoch 2's end checkpoint (32; restores 30); then in the last validation (restores 45)
    kill(("checkpoint", 31), ("validate", 48), loader="dataloader"),
]
#: The seeds of the random kill points (``$RESUME_FAULT_SEEDS``, e.g. ``1,2,3,4,5,6`` to soak).
#: None by default (each pair costs three training processes): seed 1, the default before,
#: drew checkpoint-10 then validate-14 with the DataModule, the phases of the third fixed
#: kill with the other loader; what the loader changes, the restore of the data order from
#: a checkpoint, is checked for every checkpoint of both loaders in one process
#: (``test_resume_inprocess.py``).
SEEDS = [int(s) for s in os.environ.get("RESUME_FAULT_SEEDS", "").split(",") if s.strip()]
PHASES = ("batch", "validate", "checkpoint")


def random_kill(seed: int) -> Kill:
    """Two kill points drawn from ``random.Random(seed)``: the first after a first
    checkpoint exists, the second after the first one's restore point."""
    rng = random.Random(seed)
    loader = rng.choice(["datamodule", "dataloader"])
    phase = rng.choice(PHASES)
    first = Fault(phase, rng.randint({"validate": 1}.get(phase, EVERY + 1), TOTAL - 2))
    after = first.restored_step() + 2
    second = Fault(rng.choice(PHASES), rng.randint(after, TOTAL))
    return Kill((first, second), loader)


RANDOM_KILLS = [random_kill(seed) for seed in SEEDS]
KILLS = {k.name: k for k in FIXED_KILLS + RANDOM_KILLS}
MACHINE_CRASH = kill(("machine", 30))  # the supervisor dies too; restores step 25
TRUNCATE_HOLD = 23  # stopped at step 23 (checkpoint); step-23 truncated: restores step 20
DDP_HOLD = 11  # of 24 DDP steps: mid-epoch 2
RUNNING_HOLD = EPOCH  # stopped after an epoch's last batch, before its validation
FORK_LR = 0.002


@dataclass
class Context:
    """Where the scenarios run: the main project, and one for the machine-crash scenario
    (its reconcile with a zero staleness window must not touch runs being launched)."""

    project: Path
    crash_project: Path


def _cli(result: Any) -> dict[str, Any]:
    return {"rc": result.returncode, "stdout": result.stdout, "stderr": result.stderr}


def _finish(project: Path, run_id: str, resume: Any) -> dict[str, Any]:
    """What the tests check after a resume: the CLI's answer, show --json, the curves."""
    return {
        "id": run_id,
        "resume": _cli(resume),
        "show": wb_json(project, "show", run_id, "--json"),
        "metrics": wb_json(project, "metrics", run_id, "--format", "json"),
    }


def _listing(run_dir: str | Path) -> list[str]:
    folder = Path(run_dir) / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def baseline(loader: str, *ddp: str) -> Callable[[Campaign], dict[str, Any]]:
    """An uninterrupted run, to compare with."""
    def scenario(c: Campaign) -> dict[str, Any]:
        project = c.context.project
        record, result = launch(project, "-s", f"loader={loader}", *ddp, wait=True)
        assert result.returncode == 0 and record["status"] == "completed", (record, result.stderr)
        return {"id": record["id"], "record": record,
                "metrics": wb_json(project, "metrics", record["id"], "--format", "json")}
    return scenario


def killed(plan: Kill) -> Callable[[Campaign], dict[str, Any]]:
    """The first attempt (and the second) kills itself; ``workbench resume RUN --wait``
    after each, until the run completes."""
    def scenario(c: Campaign) -> dict[str, Any]:
        project = c.context.project
        record, _ = launch(project, *plan.overrides, wait=True)
        run_id = record["id"]
        killed_rows, files, resumes = [], [], []
        for _fault in plan.faults:
            row = run_row(project, run_id)
            killed_rows.append(row)
            files.append(_listing(row.run_dir))
            if row.status != "interrupted":
                break  # the test reports it
            resumes.append(wb(project, "resume", run_id, "--wait"))
        out = _finish(project, run_id, resumes[-1])
        out.update(killed=killed_rows, files_after_kill=files, files_after_resume=_listing(row.run_dir),
                   earlier_resumes=[_cli(r) for r in resumes[:-1]], kill=plan)
        return out
    return scenario


def machine_crash(c: Campaign) -> dict[str, Any]:
    """Supervisor and training process die together: nobody writes an outcome. A reader
    with a zero staleness window reconciles the run to ``interrupted``; it then resumes."""
    project = c.context.crash_project
    record, _ = launch(project, *MACHINE_CRASH.overrides)
    run_id = record["id"]

    def both_dead() -> dict[str, Any] | None:
        row = run_row(project, run_id)
        assert row.status in ("queued", "running"), f"ended on its own: {row.status} {row.error}"
        if not (row.pid and row.supervisor_pid and row.started_at):
            return None
        return None if pid_alive(row.pid) or pid_alive(row.supervisor_pid) else row

    poll(both_dead, f"run {run_id}'s supervisor and training process to die")
    pids_gone([run_row(project, run_id).pid])
    before = run_row(project, run_id)  # read after both are gone: nobody wrote an outcome
    listed = wb_json(project, "ls", "--json", env=cli_env(project.parent, WORKBENCH_STALE_AFTER="0"))
    reconciled = run_row(project, run_id)
    out = _finish(project, run_id, wb(project, "resume", run_id, "--wait"))
    out.update(before=before, listed=[r for r in listed if r["id"] == run_id], reconciled=reconciled,
               kill=MACHINE_CRASH)
    return out


def _hold_and_stop(project: Path, *args: str) -> tuple[str, int, dict[str, Any]]:
    record, _ = launch(project, *args)
    run_id = record["id"]
    held = wait_held(project, run_id)
    stop = wb(project, "stop", run_id)
    assert stop.returncode == 0, stop.stderr
    return run_id, held, wait_ended(project, run_id)


def truncated(c: Campaign) -> dict[str, Any]:
    """Stopped at step 23; its newest checkpoint (step 23) is then cut in half."""
    project = c.context.project
    run_id, held, stopped = _hold_and_stop(project, "-s", f"hold_at_step={TRUNCATE_HOLD}")
    files = step_files(stopped.run_dir)
    newest = files[-1]
    size = newest.stat().st_size
    with open(newest, "r+b") as fh:
        fh.truncate(size // 2)
    out = _finish(project, run_id, wb(project, "resume", run_id, "--wait"))
    out.update(held=held, stopped=stopped, files=[p.name for p in files], truncated=newest.name)
    return out


def ddp_stopped(c: Campaign) -> dict[str, Any]:
    """A 2-process DDP run (gloo on CPU) stopped with ``workbench stop``, then resumed."""
    project = c.context.project
    run_id, held, stopped = _hold_and_stop(project, "--backend", "ddp", "--nproc", "2",
                                           "-s", f"hold_at_step={DDP_HOLD}")
    files = _listing(stopped.run_dir)
    out = _finish(project, run_id, wb(project, "resume", run_id, "--wait"))
    out.update(held=held, stopped=stopped, files=files)
    return out


def _refused_resume(project: Path, run_id: str, live: bool = False) -> dict[str, Any]:
    if not live:
        wait_settled(project, run_id)  # its supervisor's last words are written
    before = run_snapshot(project, run_id)
    result = wb(project, "resume", run_id, "--wait")
    after = run_snapshot(project, run_id)
    return {"id": run_id, "resume": _cli(result), "before": before, "after": after}


def refuse_completed(c: Campaign) -> dict[str, Any]:
    """Resuming a completed run."""
    base = c.result("baseline-datamodule")
    return _refused_resume(c.context.project, base["id"])


def refuse_no_checkpoint(c: Campaign) -> dict[str, Any]:
    """Resuming a run killed before its first checkpoint (epoch-end checkpoints only)."""
    project = c.context.project
    record, _ = launch(project, "-s", "every_steps=0", "-s", "kill_phase=batch", "-s", "kill_at_step=5", wait=True)
    row = run_row(project, record["id"])
    out = _refused_resume(project, record["id"])
    out.update(first=row, files=_listing(row.run_dir))
    return out


def refuse_running(c: Campaign) -> dict[str, Any]:
    """Resuming a running run (held at step 16); then it is stopped and resumed for real."""
    project = c.context.project
    record, _ = launch(project, "-s", f"hold_at_step={RUNNING_HOLD}")
    run_id = record["id"]
    wait_held(project, run_id)
    out = _refused_resume(project, run_id, live=True)
    stop = wb(project, "stop", run_id)
    assert stop.returncode == 0, stop.stderr
    out["stopped"] = wait_ended(project, run_id)
    out["later"] = _finish(project, run_id, wb(project, "resume", run_id, "--wait"))
    return out


def fork(c: Campaign) -> dict[str, Any]:
    """``workbench fork`` of the completed baseline with a new lr and one more epoch; and
    a fork from a checkpoint that does not exist."""
    project = c.context.project
    base = c.result("baseline-datamodule")
    before = {r["id"] for r in wb_json(project, "ls", "--json", "--limit", "0")}
    bad = wb(project, "fork", base["id"], "--from-checkpoint", "step-999", "-s", "epochs=4")
    # Other scenarios launch runs meanwhile (one of them a fork of the same parent).
    created = [r for r in wb_json(project, "ls", "--json", "--limit", "0") if r["id"] not in before]
    result = wb(project, "fork", base["id"], "-s", f"lr={FORK_LR}", "-s", "epochs=4", "--wait", "--json")
    assert result.stdout.strip(), result.stderr
    record = json.loads(result.stdout)
    return {
        "parent": base["id"], "bad": _cli(bad), "created_meanwhile": created,
        "fork": _cli(result), "record": record,
        "show": wb_json(project, "show", record["id"], "--json"),
        "metrics": wb_json(project, "metrics", record["id"], "--format", "json"),
        "parent_files": _listing(base["record"]["run_dir"]),
    }


def fork_killed(c: Campaign) -> dict[str, Any]:
    """The same fork as :func:`fork`, killed during its step 50 (before its own first
    checkpoint), then resumed: it starts again from the parent's checkpoint."""
    project = c.context.project
    base = c.result("baseline-datamodule")
    result = wb(project, "fork", base["id"], "-s", f"lr={FORK_LR}", "-s", "epochs=4", "-s", "kill_phase=batch",
                "-s", "kill_at_step=50", "--wait", "--json")
    assert result.stdout.strip(), result.stderr
    record = json.loads(result.stdout)
    files = _listing(record["run_dir"])
    out = _finish(project, record["id"], wb(project, "resume", record["id"], "--wait"))
    out.update(parent=base["id"], first=record, files_after_kill=files)
    return out


SCENARIOS: dict[str, Callable[[Campaign], Any]] = {
    "baseline-datamodule": baseline("datamodule"),
    "baseline-dataloader": baseline("dataloader"),
    "baseline-ddp": baseline("datamodule", "--backend", "ddp", "--nproc", "2"),
    **{name: killed(kill) for name, kill in KILLS.items()},
    "machine-crash": machine_crash,
    "truncated": truncated,
    "ddp-stopped": ddp_stopped,
    "refuse-completed": refuse_completed,
    "refuse-no-checkpoint": refuse_no_checkpoint,
    "refuse-running": refuse_running,
    "fork": fork,
    "fork-killed": fork_killed,
}
