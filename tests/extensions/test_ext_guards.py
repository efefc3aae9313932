"""NanGuard and EarlyStopping: a run ends with a clear reason."""

from __future__ import annotations

import math

import pytest
import torch
from ext_tasks import Regression, make_task
from torch.utils.data import TensorDataset

from workbench import DataModule
from workbench.errors import WorkbenchError
from workbench.extensions import EarlyStopping, MetricLogger, NanGuard, NonFiniteLossError
from workbench.sinks import MemorySink


class PoisonedData(Regression):
    """Sample 20 has a NaN input; no shuffling, so it is in the third batch of 8."""

    def build_data(self):
        x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
        x[20, 1] = float("nan")
        return DataModule(TensorDataset(x, torch.zeros(32, 1)), batch_size=8, shuffle=False)


def test_nan_guard_names_the_step_where_the_loss_became_nan() -> None:
    task = make_task(PoisonedData, epochs=2, extensions=[NanGuard()])
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 3 \(epoch 1, batch 2\)"):
        task.fit()
    assert task.state.step == 3
    assert task.hooks.values == {}


def test_without_the_guard_a_nan_loss_trains_on_silently() -> None:
    sink = MemorySink()
    task = make_task(PoisonedData, epochs=2, sink=sink, extensions=[MetricLogger()])
    task.fit()
    assert task.state.step == 8
    assert math.isnan(sink.series("train/loss")[-1][1])


def test_nan_guard_catches_a_diverging_learning_rate() -> None:
    task = make_task(lr=1e30, epochs=2, extensions=[NanGuard()])
    with pytest.raises(NonFiniteLossError, match=r"loss became (nan|inf) at step (\d+)") as info:
        task.fit()
    step = int(info.value.args[0].split("at step ")[1].split()[0])
    assert 2 <= step == task.state.step < 8
    assert "gradient_clip_val" in str(info.value)


def test_early_stopping_ends_fit_when_the_metric_stops_improving() -> None:
    stopper = EarlyStopping("val/loss", patience=2)
    task = make_task(lr=0.0, epochs=6, samples=32, extensions=[stopper])  # lr 0: nothing improves
    task.fit()
    assert task.state.stopped_early
    assert task.state.epoch == 3 and task.state.step == 12
    assert "val/loss has not improved for 2 validations" in task.state.stop_reason
    assert stopper.state_dict()["bad"] == 2


def test_early_stopping_lets_an_improving_run_finish() -> None:
    stopper = EarlyStopping("loss", patience=1)
    task = make_task(lr=0.02, epochs=4, extensions=[stopper])
    task.fit()
    assert not task.state.stopped_early
    assert task.state.epoch == 4
    assert stopper.bad == 0


def test_early_stopping_names_a_metric_validation_does_not_report() -> None:
    task = make_task(extensions=[EarlyStopping("accuracy", mode="max")])
    with pytest.raises(WorkbenchError, match=r"EarlyStopping monitors 'accuracy'.*it reports: loss"):
        task.fit()
    assert task.state.step == 4  # found at the end of the first epoch


def test_early_stopping_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="'min' or 'max'"):
        EarlyStopping(mode="lowest")
