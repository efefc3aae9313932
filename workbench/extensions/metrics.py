"""Metric logging: per-step loss, epoch means, validation and test metrics, lr, samples/s."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

__all__ = ["MetricLogger", "batch_size"]


def batch_size(batch: Any) -> int:
    """The number of samples in a batch: the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else 1
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return batch_size(next(iter(batch.values())))
    return 1


class MetricLogger:
    """Logs what a training curve needs.

    Keys: ``train/loss`` (every ``every`` steps), ``train/loss_epoch`` (the epoch's mean,
    averaged over processes), ``lr`` (the first parameter group's, per epoch),
    ``train/samples_per_s`` (per epoch, all processes together), ``val/<metric>`` after
    each validation and ``test/<metric>`` after a test.

    ``train/samples_per_s`` is the epoch's training samples (the first dimension of each
    batch's first tensor, times the number of processes) over the seconds spent in the
    epoch's batches, from its start to its last batch (validation not included). An epoch
    resumed from a checkpoint counts its samples and seconds before the interruption too
    (the time the run was down is not counted), so a resume re-logs the same rate.

    Args:
        every: Log the per-step loss every this many steps.
    """

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, every)
        self._sum = 0.0
        self._count = 0
        self._samples = 0
        self._started = 0.0
        self._elapsed = 0.0  # the epoch's seconds before ``_started`` (an earlier attempt's)
        self._running = False  # whether the clock runs: from the epoch's start to its end

    def before_epoch(self, state: Any) -> None:
        """Start the epoch's clock; a fresh epoch also starts its sample count at zero.

        An epoch resumed part-way (or at its last batch) keeps the samples and seconds of
        the earlier attempt, restored from the checkpoint.
        """
        if state.batch_in_epoch == 0:
            self._samples = 0
            self._elapsed = 0.0
        self._started = time.perf_counter()
        self._running = True

    def _seconds(self) -> float:
        return self._elapsed + (time.perf_counter() - self._started if self._running else 0.0)

    def after_batch(self, loss: torch.Tensor, batch: Any, state: Any, log: Callable[..., None]) -> None:
        """Log the step's loss and add it to the epoch's mean."""
        value = loss.item()
        self._sum += value
        self._count += 1
        self._samples += batch_size(batch)
        if state.step % self.every == 0:
            log("train/loss", value)

    def after_epoch(self, optimizer: Any, backend: Any, log: Callable[..., None]) -> None:
        """Log the epoch's mean loss, learning rate and throughput."""
        elapsed = max(self._seconds(), 1e-9)
        self._elapsed, self._running = elapsed, False
        if self._count:
            mean = backend.reduce_mean({"loss": self._sum / self._count})["loss"]
            log("train/loss_epoch", mean)
        if optimizer is not None and optimizer.param_groups:
            log("lr", optimizer.param_groups[0]["lr"])
        log("train/samples_per_s", self._samples * backend.world_size / elapsed)
        self._sum, self._count = 0.0, 0

    def after_validate(self, metrics: dict[str, float], log: Callable[..., None]) -> None:
        """Log each validation metric as ``val/<name>``."""
        for key, value in metrics.items():
            log(f"val/{key}", value)

    def after_test(self, metrics: dict[str, float], log: Callable[..., None]) -> None:
        """Log each test metric as ``test/<name>``."""
        for key, value in metrics.items():
            log(f"test/{key}", value)

    def state_dict(self) -> dict[str, Any]:
        """The current epoch's running sums, samples and seconds (for a mid-epoch resume)."""
        return {"sum": self._sum, "count": self._count, "samples": self._samples,
                "elapsed": self._seconds()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the running sums, samples and seconds."""
        self._sum = float(state.get("sum", 0.0))
        self._count = int(state.get("count", 0))
        self._samples = int(state.get("samples", 0))
        self._elapsed = float(state.get("elapsed", 0.0))
        self._running = False
