"""assemble_task: one recipe builds a task and attaches what a run gets (runner and run process)."""

from __future__ import annotations

from pathlib import Path

from ext_tasks import Regression

from workbench.checkpoint_names import checkpoint_folder, step_files
from workbench.extensions import (
    Checkpoint,
    EarlyStopping,
    MetricLogger,
    NanGuard,
    Progress,
    ReproducibilityRecord,
    assemble_task,
)
from workbench.sinks import MemorySink


class WithOwnExtensions(Regression):
    """Brings its own early stopping and checkpoint schedule."""

    def extensions(self) -> list[object]:
        return [EarlyStopping("loss", patience=5), Checkpoint(every_epochs=0, every_steps=2, keep=10)]


def kinds(task) -> list[type]:
    return [type(ext) for ext in task.hooks.extensions]


def test_defaults_come_first_then_the_tasks_own(tmp_path: Path) -> None:
    task = assemble_task(WithOwnExtensions, {"epochs": 1}, run_dir=tmp_path, sink=MemorySink(), device="cpu")
    assert kinds(task) == [MetricLogger, NanGuard, Progress, ReproducibilityRecord, EarlyStopping, Checkpoint]
    assert task.config.epochs == 1


def test_a_run_gets_a_default_checkpoint_that_reports_its_saves(tmp_path: Path) -> None:
    events: list[tuple[str, str, dict]] = []
    sink = MemorySink()
    task = assemble_task(Regression, None, run_dir=tmp_path, sink=sink, device="cpu", checkpoints=True,
                         on_event=lambda *event: events.append(event))
    assert kinds(task).count(Checkpoint) == 1
    task.fit()
    saved = step_files(checkpoint_folder(tmp_path))
    per_epoch = task.state.epoch_length
    assert [step for step, _ in saved] == [2 * per_epoch, per_epoch]  # the default: each epoch boundary, the end
    assert any(kind == "checkpoint" for kind, _, _ in events)
    assert sink.series("train/loss")  # the sink given is the one the task logs to


def test_a_tasks_own_checkpoint_replaces_the_default_and_gets_the_callback(tmp_path: Path) -> None:
    events: list[tuple[str, str, dict]] = []
    task = assemble_task(WithOwnExtensions, {"epochs": 1}, run_dir=tmp_path, sink=None, device="cpu",
                         checkpoints=True, on_event=lambda *event: events.append(event))
    own = [ext for ext in task.hooks.extensions if isinstance(ext, Checkpoint)]
    assert len(own) == 1 and own[0].every_steps == 2
    task.fit()
    steps = [step for step, _ in step_files(checkpoint_folder(tmp_path))]
    assert steps == list(range(task.state.step, 0, -2))  # every 2 steps, keep=10: its schedule, not the default
    assert len([e for e in events if e[0] == "checkpoint"]) == len(steps)


def test_without_checkpoints_nothing_is_saved(tmp_path: Path) -> None:
    task = assemble_task(Regression, {"epochs": 1}, run_dir=tmp_path, sink=None, device="cpu")
    assert Checkpoint not in kinds(task)
    task.fit()
    assert not checkpoint_folder(tmp_path).exists()
