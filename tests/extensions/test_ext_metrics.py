"""MetricLogger: the curves a run shows, checked through a MemorySink."""

from __future__ import annotations

import pytest
from ext_tasks import make_task

from workbench.extensions import MetricLogger
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
