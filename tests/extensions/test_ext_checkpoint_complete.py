"""State a task keeps on ``self``: checkpointed when declared, reported when not.

Real training, in one process. A "kill" is an exception out of ``fit`` (the task object is
then dropped, as a dead process's would be) and a resume is a fresh task restored from the
newest checkpoint file, as ``workbench resume`` does.

- Undeclared state (an LSTM's hidden state, an in-place EMA) is reported once, at the first
  checkpoint: an event and a warning line. The report is no false alarm: the resumed run
  ends with other weights (or another average) than the uninterrupted one.
- Declared (``checkpointed = (...)``), the same stop and resume, and a kill during a
  validation, end bit for bit where the uninterrupted run ends, and nothing is reported.
- The sample project's tasks, assembled as a run assembles them, report nothing.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from stateful_tasks import CarriedLSTM, CarriedLSTMDeclared, InPlaceEMA, InPlaceEMADeclared

from workbench import Task
from workbench.extensions import Checkpoint, assemble_task
from workbench.extensions.checkpoint import list_checkpoints, load_checkpoint

QUICKSTART_TASKS = Path(__file__).resolve().parents[2] / "sample_projects" / "quickstart" / "tasks"
WARNING = "warning: resume may diverge: "


class StopAt:
    """Requests a graceful stop after step ``step`` (a checkpoint is then written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def after_batch(self, state, task) -> None:
        if state.step == self.step:
            task.request_stop("test")


class Killed(Exception):
    """Stands for the process dying."""


class KillInValidation:
    """Dies in the middle of the first validation that starts at or after step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def before_validate_batch(self, batch_idx: int, state) -> None:
        if state.step >= self.step and batch_idx == 1:
            raise Killed


def _own_state(task: Task) -> dict[str, Any]:
    state = {"model": task.raw_model.state_dict(), "optimizer": task.optimizer.state_dict(),
             "step": task.state.step}
    if hasattr(task, "hidden"):
        state["hidden"] = task.hidden
    if hasattr(task, "ema"):
        state["ema"] = task.ema
        state["ema_model"] = task.ema_model.state_dict()
    return state


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


def _uninterrupted(cls: type[Task]) -> dict[str, Any]:
    task = cls(device="cpu")
    task.fit()
    return _own_state(task)


def _interrupted(cls: type[Task], folder: Path, *extensions: object, every_steps: int = 4) -> tuple[list, Task]:
    """A run of ``cls`` saving every ``every_steps`` steps to ``folder``; its events and task."""
    events: list[tuple[str, str, dict]] = []
    task = cls(device="cpu", extensions=[Checkpoint(folder, every_steps=every_steps, keep=100,
                                                    on_event=lambda *e: events.append(e)),
                                         *extensions])
    try:
        task.fit()
    except Killed:
        pass
    return events, task


def _resumed(cls: type[Task], folder: Path) -> dict[str, Any]:
    """A fresh task of ``cls`` restored from the newest checkpoint in ``folder``, trained to the end."""
    _, path = list_checkpoints(folder)[0]
    task = cls(device="cpu")
    task.restore(load_checkpoint(path))
    task.fit()
    return _own_state(task)


def _incomplete(events: list) -> list[tuple[str, str, dict]]:
    return [e for e in events if e[0] == "checkpoint-incomplete"]


# -- an LSTM's hidden state carried on self -------------------------------------------------


def test_an_undeclared_hidden_state_is_reported_at_the_first_checkpoint_and_its_resume_diverges(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, task = _interrupted(CarriedLSTM, tmp_path, StopAt(10))
    assert task.state.stopped_early and task.state.step == 10
    kinds = [e[0] for e in events]
    assert kinds[:2] == ["checkpoint-incomplete", "checkpoint"], kinds  # at the first save (step 4)
    assert events[1][2]["step"] == 4
    [(_, message, data)] = _incomplete(events)  # once, not at every later checkpoint
    assert data == {"attributes": ["hidden"]}
    assert message.startswith("resume may diverge: `self.hidden` changes during training and is not "
                              "checkpointed")
    assert "checkpointed = ('hidden',)" in message
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {message}"]

    # Not a false alarm: the resumed run starts the LSTM's state afresh and ends elsewhere.
    end = _uninterrupted(CarriedLSTM)
    resumed = _resumed(CarriedLSTM, tmp_path)
    assert resumed["step"] == end["step"] == 18
    assert not _equal(resumed["model"], end["model"])


def test_a_declared_hidden_state_resumes_bit_for_bit_after_a_stop(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    events, task = _interrupted(CarriedLSTMDeclared, tmp_path, StopAt(10))
    assert task.state.step == 10 and not _incomplete(events)
    assert WARNING not in capsys.readouterr().err
    saved = load_checkpoint(list_checkpoints(tmp_path)[0][1])["task"]
    assert _equal(saved["hidden"], task.hidden)
    assert _equal(_resumed(CarriedLSTMDeclared, tmp_path), _uninterrupted(CarriedLSTMDeclared))


def test_a_declared_hidden_state_resumes_bit_for_bit_after_a_kill_in_validation(tmp_path: Path) -> None:
    events, task = _interrupted(CarriedLSTMDeclared, tmp_path, KillInValidation(12), every_steps=3)
    assert task.state.step == 12 and not _incomplete(events)
    step, _ = list_checkpoints(tmp_path)[0]
    assert step == 12  # the epoch's last batch, before its validation
    assert _equal(_resumed(CarriedLSTMDeclared, tmp_path), _uninterrupted(CarriedLSTMDeclared))


# -- an exponential moving average updated in place ------------------------------------------


def test_an_undeclared_in_place_average_is_reported_and_its_resume_diverges(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, _ = _interrupted(InPlaceEMA, tmp_path, StopAt(8))
    [(_, message, data)] = _incomplete(events)
    assert data == {"attributes": ["ema", "ema_model"]}  # a tensor's contents, a module's buffers
    assert "`self.ema`, `self.ema_model` change during training and are not checkpointed" in message
    assert capsys.readouterr().err.count(WARNING) == 1
    end = _uninterrupted(InPlaceEMA)
    resumed = _resumed(InPlaceEMA, tmp_path)
    assert _equal(resumed["model"], end["model"])  # the weights do not depend on the average…
    assert not _equal(resumed["ema"], end["ema"])  # … but the averages start over
    assert not _equal(resumed["ema_model"], end["ema_model"])


def test_a_declared_in_place_average_resumes_bit_for_bit(tmp_path: Path) -> None:
    events, _ = _interrupted(InPlaceEMADeclared, tmp_path, StopAt(8))
    assert not _incomplete(events)
    assert _equal(_resumed(InPlaceEMADeclared, tmp_path), _uninterrupted(InPlaceEMADeclared))


# -- no false alarm ------------------------------------------------------------------------------


def _sample_tasks() -> list[type[Task]]:
    sys.path.insert(0, str(QUICKSTART_TASKS))
    try:
        found = []
        for path in sorted(QUICKSTART_TASKS.glob("*.py")):
            module = importlib.import_module(path.stem)
            found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                      if issubclass(cls, Task) and cls.__module__ == module.__name__ and not cls.abstract]
        return found
    finally:
        sys.path.remove(str(QUICKSTART_TASKS))


SAMPLE_TASKS = _sample_tasks()


def test_the_sample_tasks_are_all_checked() -> None:
    assert {cls.__name__ for cls in SAMPLE_TASKS} == {
        "SineRegression", "SpiralClassification", "MLPRegression", "FourierRegression"}


@pytest.mark.parametrize("cls", SAMPLE_TASKS, ids=lambda cls: cls.__name__)
def test_the_sample_tasks_report_nothing(cls: type[Task], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    events: list[tuple[str, str, dict]] = []
    config = {"epochs": 3, "samples": 480, "batch_size": 32}
    task = assemble_task(cls, config, run_dir=tmp_path, sink=None, device="cpu", checkpoints=True,
                         on_event=lambda *e: events.append(e))
    task.fit()
    saves = [e for e in events if e[0] == "checkpoint"]
    assert len(saves) >= 2, events  # at the epochs' boundaries and the end: the check ran
    assert not _incomplete(events)
    assert WARNING not in capsys.readouterr().err
    assert task.unsaved_attributes() == []
