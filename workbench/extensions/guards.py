"""Guards: stop a run with a clear reason (NaN loss, no more improvement)."""

from __future__ import annotations

import math
from typing import Any

import torch

from workbench.errors import WorkbenchError

__all__ = ["EarlyStopping", "NanGuard", "NonFiniteLossError"]


class NonFiniteLossError(WorkbenchError):
    """The training loss became NaN or infinite."""


class NanGuard:
    """Stops training with a clear error naming the step where the loss stopped being finite.

    Args:
        every: Check every this many steps (1: every step).
    """

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, every)

    def after_batch(self, loss: torch.Tensor, state: Any, batch_idx: int) -> None:
        """Raise :class:`NonFiniteLossError` if the loss is NaN or infinite."""
        if state.step % self.every:
            return
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"loss became {value} at step {state.step} (epoch {state.epoch + 1}, "
                f"batch {batch_idx}); lower the learning rate, clip gradients "
                "(gradient_clip_val) or check the data"
            )


class EarlyStopping:
    """Ends ``fit`` when a validation metric stops improving.

    Args:
        monitor: The validation metric to watch (``loss`` or ``val/loss``).
        patience: Validations without improvement before stopping.
        mode: ``min`` or ``max``.
        min_delta: The smallest change that counts as an improvement.
    """

    def __init__(self, monitor: str = "loss", patience: int = 3, mode: str = "min",
                 min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min' or 'max', got {mode!r}")
        self.monitor = monitor.removeprefix("val/")
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.best: float | None = None
        self.bad = 0

    def after_validate(self, metrics: dict[str, float], task: Any) -> None:
        """Compare the monitored metric with the best so far; ask to stop when patience runs out."""
        if self.monitor not in metrics:
            raise WorkbenchError(
                f"EarlyStopping monitors {self.monitor!r}, which validation does not report; "
                f"it reports: {', '.join(sorted(metrics)) or 'nothing'}"
            )
        value = metrics[self.monitor]
        improved = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if improved:
            self.best, self.bad = value, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            task.request_stop(
                f"early stopping: val/{self.monitor} has not improved for {self.bad} "
                f"validations (best {self.best:.6g})"
            )

    def state_dict(self) -> dict[str, Any]:
        """The best value and the count of validations without improvement."""
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value and the count."""
        self.best = state.get("best")
        self.bad = int(state.get("bad", 0))
