"""Progress: step, total, epoch and ETA, handed to a reporter (a console bar, the run index)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ConsoleReporter", "Progress", "ProgressInfo", "Reporter", "epoch_line"]


@dataclass
class ProgressInfo:
    """Where a fit stands.

    Attributes:
        step: Training steps done.
        total: Steps the fit will take (None if the loader has no length).
        epoch: The current epoch, 1-based for display.
        max_epochs: Epochs the fit will take.
        elapsed: Seconds since the fit started.
        eta: Estimated seconds left (None until it can be estimated).
        steps_per_s: Recent speed.
        metrics: The latest logged metrics.
    """

    step: int
    total: int | None
    epoch: int
    max_epochs: int
    elapsed: float
    eta: float | None
    steps_per_s: float
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        """Done, as a fraction of the total."""
        return self.step / self.total if self.total else None


class Reporter(Protocol):
    """Where :class:`Progress` sends its reports."""

    def start(self, info: ProgressInfo) -> None:
        """The fit starts."""

    def update(self, info: ProgressInfo) -> None:
        """A few times a second while training."""

    def epoch_end(self, info: ProgressInfo) -> None:
        """An epoch (and its validation) is done."""

    def finish(self, info: ProgressInfo) -> None:
        """The fit ended."""


class Progress:
    """Tracks progress and reports it, at most every ``interval`` seconds per step.

    Args:
        reporter: Receives the reports (None: only :attr:`info` is kept up to date).
        interval: Seconds between step reports.
    """

    def __init__(self, reporter: Reporter | None = None, interval: float = 0.2) -> None:
        self.reporter = reporter
        self.interval = interval
        self.info: ProgressInfo | None = None
        self._t0 = 0.0
        self._step0 = 0
        self._last = 0.0
        self._pending = False

    def _make(self, state: Any, task: Any) -> ProgressInfo:
        now = time.perf_counter()
        elapsed = now - self._t0
        done = state.step - self._step0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = None
        if state.total_steps and rate > 0:
            eta = (state.total_steps - state.step) / rate
        # After the last epoch the counter has moved past it: report "2/2", not "3/2".
        epoch = min(state.epoch + 1, max(state.max_epochs, 1))
        self.info = ProgressInfo(state.step, state.total_steps, epoch, state.max_epochs,
                                 elapsed, eta, rate, dict(task.metrics))
        return self.info

    def before_fit(self, state: Any, task: Any) -> None:
        """Start the clock and report the start."""
        self._t0 = self._last = time.perf_counter()
        self._step0 = state.step
        info = self._make(state, task)
        if self.reporter is not None:
            self.reporter.start(info)

    def after_batch(self, state: Any, task: Any) -> None:
        """Report, if ``interval`` has passed since the last report."""
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            info = self._make(state, task)
            if self.reporter is not None:
                self.reporter.update(info)

    def after_epoch(self, state: Any, task: Any, val_loader: Any) -> None:
        """Report the epoch's end now, or after its validation."""
        if val_loader is None:
            self._epoch_end(state, task)
        else:
            self._pending = True

    def after_validate(self, state: Any, task: Any) -> None:
        """Report the epoch's end once its validation is done."""
        if self._pending:
            self._pending = False
            self._epoch_end(state, task)

    def _epoch_end(self, state: Any, task: Any) -> None:
        info = self._make(state, task)
        if self.reporter is not None:
            self.reporter.epoch_end(info)

    def after_fit(self, state: Any, task: Any) -> None:
        """Report the end."""
        info = self._make(state, task)
        if self.reporter is not None:
            self.reporter.finish(info)


def _format_metrics(metrics: dict[str, float], keys: tuple[str, ...]) -> str:
    parts = [f"{k} {metrics[k]:.4g}" for k in keys if k in metrics]
    return "  ".join(parts)


def epoch_line(info: ProgressInfo, keys: tuple[str, ...] | None = None) -> str:
    """``epoch 2/5  step 1250  train/loss_epoch 0.0412  val/loss 0.0398  (12.3 s)``.

    Args:
        info: Where the fit stands at the epoch's end.
        keys: The metrics to show (default: the epoch's loss and every ``val/`` key).
    """
    keys = keys or tuple(["train/loss_epoch"] + sorted(k for k in info.metrics if k.startswith("val/")))
    return (f"epoch {info.epoch}/{info.max_epochs}  step {info.step}  "
            f"{_format_metrics(info.metrics, keys)}  ({info.elapsed:.1f} s)")


class ConsoleReporter:
    """A rich progress bar on a terminal, and one line per epoch everywhere.

    Args:
        console: A ``rich.console.Console`` (default: one on stderr).
        keys: Metrics shown per epoch (default: the epoch's losses and every ``val/`` key).
    """

    def __init__(self, console: Any = None, keys: tuple[str, ...] | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.keys = keys
        self._bar: Any = None
        self._task_id: Any = None

    def start(self, info: ProgressInfo) -> None:
        """Open the bar (on a terminal only)."""
        if not self.console.is_terminal:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._bar = Bar(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                        TextColumn("{task.fields[loss]}"), console=self.console, transient=True)
        self._bar.start()
        self._task_id = self._bar.add_task("fit", total=info.total, completed=info.step,
                                           epoch=f"{info.epoch}/{info.max_epochs}", loss="")

    def update(self, info: ProgressInfo) -> None:
        """Move the bar."""
        if self._bar is not None:
            loss = info.metrics.get("train/loss")
            self._bar.update(self._task_id, completed=info.step,
                             epoch=f"{info.epoch}/{info.max_epochs}",
                             loss="" if loss is None else f"loss {loss:.4g}")

    def epoch_end(self, info: ProgressInfo) -> None:
        """Print the epoch's line: its losses and validation metrics."""
        self.update(info)
        self.console.print(epoch_line(info, self.keys), highlight=False)

    def finish(self, info: ProgressInfo) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


