"""Tiny, real tasks for the extension tests: a few dozen samples, a few steps, CPU only (the
pieces shared with other folders are in :mod:`support.tasks`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from support.tasks import make_task as shared_make_task
from support.tasks import regression_data, weights
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Task

__all__ = ["Regression", "make_task", "weights"]


def _sums(n: int, seed: int) -> TensorDataset:
    """``n`` samples of a noisy sum of 4 inputs."""
    return regression_data(n, seed, features=4, weighted=False)


class Regression(Task):
    """An MLP on a noisy sum of its inputs (for tests)."""

    @dataclass
    class Config:
        epochs: int = 2
        lr: float = 0.02
        batch_size: int = 8
        samples: int = 32
        val_samples: int = 12
        dropout: float = 0.0
        seed: int = 0

    def build_data(self) -> DataModule:
        c = self.config
        return DataModule(_sums(c.samples, 10), _sums(c.val_samples, 20), _sums(c.val_samples, 30),
                          batch_size=c.batch_size, eval_batch_size=5, seed=c.seed)

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(self.config.dropout), nn.Linear(6, 1))

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()


def make_task(cls: type[Task] = Regression, **config: Any) -> Task:
    """:func:`support.tasks.make_task`, of :class:`Regression` unless ``cls`` says otherwise."""
    return shared_make_task(cls, **config)
