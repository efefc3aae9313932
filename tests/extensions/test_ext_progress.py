"""Progress: start, update, epoch_end and finish reach the reporter with sensible numbers."""

from __future__ import annotations

import io

from ext_tasks import Regression, make_task
from rich.console import Console

from workbench.extensions import ConsoleReporter, MetricLogger, Progress


class Reports:
    """A reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def start(self, info):
        self.calls.append(("start", info))

    def update(self, info):
        self.calls.append(("update", info))

    def epoch_end(self, info):
        self.calls.append(("epoch_end", info))

    def finish(self, info):
        self.calls.append(("finish", info))

    def of(self, kind: str) -> list:
        return [info for k, info in self.calls if k == kind]


def test_progress_reports_start_steps_epochs_and_finish() -> None:
    reports = Reports()
    task = make_task(epochs=2, samples=32, batch_size=8,
                     extensions=[MetricLogger(), Progress(reports, interval=0)])
    task.fit()
    kinds = [k for k, _ in reports.calls]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    (start,) = reports.of("start")
    assert (start.step, start.total, start.epoch, start.max_epochs) == (0, 8, 1, 2)
    assert [i.step for i in reports.of("update")] == list(range(1, 9))
    assert all(i.total == 8 for i in reports.of("update"))
    ends = reports.of("epoch_end")
    assert [(i.step, i.epoch) for i in ends] == [(4, 1), (8, 2)]
    assert all("val/loss" in i.metrics and "train/loss_epoch" in i.metrics for i in ends)
    assert kinds.index("epoch_end") > kinds.index("update")
    (finish,) = reports.of("finish")
    assert (finish.step, finish.total, finish.epoch, finish.max_epochs) == (8, 8, 2, 2)
    assert finish.fraction == 1.0 and finish.eta == 0


def test_progress_reports_an_epoch_end_without_validation_data() -> None:
    class NoVal(Regression):
        def build_data(self):
            return super().build_data().train

    reports = Reports()
    make_task(NoVal, epochs=2, extensions=[Progress(reports)]).fit()
    assert [(i.step, i.epoch) for i in reports.of("epoch_end")] == [(4, 1), (8, 2)]


def test_the_console_reporter_prints_one_line_per_epoch_off_a_terminal() -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, width=200))
    make_task(epochs=2, extensions=[MetricLogger(), Progress(reporter)]).fit()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  step 4  train/loss_epoch ")
    assert "val/loss " in lines[1] and lines[1].startswith("epoch 2/2  step 8")
