"""Tiny, real tasks for the extension tests: a few dozen samples, a few steps, CPU only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Task


def regression_data(n: int, seed: int) -> TensorDataset:
    """``n`` samples of a noisy linear function of 4 inputs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


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
        return DataModule(regression_data(c.samples, 10), regression_data(c.val_samples, 20),
                          regression_data(c.val_samples, 30), batch_size=c.batch_size,
                          eval_batch_size=5, seed=c.seed)

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(self.config.dropout), nn.Linear(6, 1))

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()


def make_task(cls: type[Task] = Regression, **config: Any) -> Task:
    """A task of ``cls`` on the CPU with ``config`` overriding its Config defaults."""
    kwargs = {k: config.pop(k) for k in ("precision", "run_dir", "sink", "extensions") if k in config}
    return cls(cls.Config(**config), device="cpu", **kwargs)


def weights(task: Task) -> dict[str, torch.Tensor]:
    """A copy of the task's model weights."""
    return {k: v.detach().clone() for k, v in task.raw_model.state_dict().items()}
