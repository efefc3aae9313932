"""MetricLogger: the curves a run shows, checked through a MemorySink."""

from __future__ import annotations

import pytest
from ext_tasks import Regression, make_task

from workbench.extensions import Checkpoint, MetricLogger
from workbench.extensions.checkpoint import list_checkpoints, load_checkpoint
from workbench.sinks import MemorySink


def test_metric_logger_logs_step_losses_epoch_means_lr_throughput_and_validation() -> None:
    sink = MemorySink()
    task = make_task(epochs=2, samples=32, batch_size=8, sink=sink, extensions=[MetricLogger()])
    task.fit()
    losses = sink.series("train/loss")
    assert [s for s, _ in losses] == list(range(1, 9))
    epoch_means = sink.series("train/loss_epoch")
    assert [s for s, _ in epoch_means] == [4, 8]
    for (_, mean), first in zip(epoch_means, (0, 4)):
        assert mean == pytest.approx(sum(v for _, v in losses[first:first + 4]) / 4)
    assert sink.series("lr") == [(4, 0.02), (8, 0.02)]
    throughput = sink.series("train/samples_per_s")
    assert [s for s, _ in throughput] == [4, 8] and all(v > 0 for _, v in throughput)
    val = sink.series("val/loss")
    assert [s for s, _ in val] == [4, 8]
    assert val[-1][1] == pytest.approx(task.evaluate()["loss"])


def test_metric_logger_logs_the_step_loss_every_n_steps() -> None:
    sink = MemorySink()
    make_task(epochs=2, samples=32, sink=sink, extensions=[MetricLogger(every=3)]).fit()
    assert [s for s, _ in sink.series("train/loss")] == [3, 6]
    assert len(sink.series("train/loss_epoch")) == 2


def test_metric_logger_logs_test_metrics_under_test() -> None:
    sink = MemorySink()
    task = make_task(sink=sink, extensions=[MetricLogger()])
    metrics = task.test()
    assert sink.series("test/loss") == [(0, metrics["loss"])]
    assert "train/loss" not in sink.points


class LogsInTrainingStep(Regression):
    """Logs its own copy of the loss from ``training_step``, as a user's task does."""

    def training_step(self, batch, batch_idx):
        result = super().training_step(batch, batch_idx)
        self.log("train/mine", result["loss"])
        return result


def test_a_value_logged_in_training_step_lands_at_the_same_step_as_the_batchs_loss() -> None:
    # Regression: it landed one step behind (at the steps done before the batch).
    sink = MemorySink()
    make_task(LogsInTrainingStep, epochs=2, sink=sink, extensions=[MetricLogger()]).fit()
    assert sink.series("train/mine") == sink.series("train/loss")
    assert [s for s, _ in sink.series("train/loss")] == list(range(1, 9))


class _StopAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def after_batch(self, state, task) -> None:
        if state.step == self.step:
            task.request_stop("test")


class _Killed(Exception):
    pass


class _KillInValidation:
    def before_validate_batch(self, batch_idx: int) -> None:
        raise _Killed


@pytest.mark.parametrize("interruption", ["stop at the epoch's last batch", "kill in its validation"])
def test_samples_per_s_is_not_zeroed_by_a_resume_at_an_epochs_end(interruption: str, tmp_path) -> None:
    # Regression: the resumed attempt re-ran the epoch's end with no batches left and
    # replaced the step's throughput with 0.0.
    sink = MemorySink()
    cut = _StopAt(4) if interruption.startswith("stop") else _KillInValidation()
    first = make_task(epochs=2, sink=sink, extensions=[MetricLogger(), Checkpoint(tmp_path, every_steps=2), cut])
    try:
        first.fit()
    except _Killed:
        pass
    assert first.state.step == 4
    [(step, before)] = sink.series("train/samples_per_s")
    assert step == 4 and before > 0
    [(saved_step, path), *_] = list_checkpoints(tmp_path)
    assert saved_step == 4
    checkpoint = load_checkpoint(path)
    saved = checkpoint["extensions"]["MetricLogger"]
    assert saved["samples"] == 32 and saved["elapsed"] > 0  # the whole epoch's, before the cut
    second = make_task(epochs=2, sink=sink, extensions=[MetricLogger()])
    second.restore(checkpoint)
    second.fit()
    throughput = sink.series("train/samples_per_s")
    assert [s for s, _ in throughput] == [4, 8]
    # The epoch's samples over its seconds (those of the first attempt, and the few since).
    assert 0 < throughput[0][1] <= 32 / saved["elapsed"]
    assert throughput[1][1] > 0
