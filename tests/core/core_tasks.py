"""Tiny, real tasks for the core tests: a few dozen samples, a few steps, CPU only (the
pieces shared with other folders are in :mod:`support.tasks`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from support.tasks import make_task as shared_make_task
from support.tasks import regression_data, same_weights, weights
import torch
from torch import nn

from workbench import DataModule, Task

__all__ = ["Recorder", "TinyRegression", "make_task", "regression_data", "same_weights", "weights"]


class TinyRegression(Task):
    """An MLP on a noisy linear function (for tests)."""

    @dataclass
    class Config:
        epochs: int = 2
        lr: float = 0.05
        batch_size: int = 8
        samples: int = 64
        val_samples: int = 20
        hidden: int = 8
        dropout: float = 0.0
        optimizer: str = "adam"
        shuffle: bool = True
        accumulate_grad_batches: int = 1
        gradient_clip_val: float = 0.0
        seed: int = 0

    def build_data(self) -> DataModule:
        c = self.config
        return DataModule(
            train=regression_data(c.samples, 1000),
            val=regression_data(c.val_samples, 2000),
            test=regression_data(c.val_samples, 3000),
            batch_size=c.batch_size,
            eval_batch_size=8,
            shuffle=c.shuffle,
            seed=c.seed,
        )

    def build_model(self) -> nn.Module:
        c = self.config
        return nn.Sequential(nn.Linear(3, c.hidden), nn.ReLU(), nn.Dropout(c.dropout),
                             nn.Linear(c.hidden, 1))

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        if self.config.optimizer == "sgd":
            return torch.optim.SGD(model.parameters(), lr=self.config.lr)
        return super().build_optimizer(model)


def make_task(cls: type[Task] = TinyRegression, **config: Any) -> Task:
    """:func:`support.tasks.make_task`, of :class:`TinyRegression` unless ``cls`` says otherwise."""
    return shared_make_task(cls, **config)


class Recorder:
    """Counts every hook of a fit and remembers the order they came in."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.count: defaultdict[str, int] = defaultdict(int)

    def _note(self, hook: str, *values: Any) -> None:
        self.calls.append((hook, *values))
        self.count[hook] += 1

    def before_setup(self) -> None:
        self._note("before_setup")

    def after_setup(self) -> None:
        self._note("after_setup")

    def before_fit(self, max_epochs: int, total_steps: int) -> None:
        self._note("before_fit", max_epochs, total_steps)

    def after_fit(self) -> None:
        self._note("after_fit")

    def before_epoch(self, epoch: int) -> None:
        self._note("before_epoch", epoch)

    def after_epoch(self, epoch: int) -> None:
        self._note("after_epoch", epoch)

    def before_batch(self, epoch: int, batch_idx: int) -> None:
        self._note("before_batch", epoch, batch_idx)

    def after_batch(self, epoch: int, batch_idx: int, loss: torch.Tensor) -> None:
        self._note("after_batch", epoch, batch_idx)

    def before_validate(self) -> None:
        self._note("before_validate")

    def after_validate(self, metrics: dict[str, float]) -> None:
        self._note("after_validate", tuple(sorted(metrics)))

    def before_validate_batch(self, batch_idx: int) -> None:
        self._note("before_validate_batch", batch_idx)

    def after_validate_batch(self, batch_idx: int) -> None:
        self._note("after_validate_batch", batch_idx)

    def before_test(self) -> None:
        self._note("before_test")

    def after_test(self) -> None:
        self._note("after_test")

    def before_teardown(self) -> None:
        self._note("before_teardown")

    def after_teardown(self) -> None:
        self._note("after_teardown")
