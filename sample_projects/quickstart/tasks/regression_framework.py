"""A framework task: how to train a 1-D regression, whatever the model (FRDC's <Model><Framework>)."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Range, Task


class RegressionFramework(Task):
    """Regress a wiggly 1-D function; subclasses choose the model."""

    abstract = True

    @dataclass
    class Config:
        epochs: int = 4
        lr: float = 5e-3
        batch_size: int = 64
        samples: Annotated[int, Range(8, None)] = 16000  # an eighth of it is validated
        seed: int = 0

    def build_data(self) -> DataModule:
        c = self.config
        g = torch.Generator().manual_seed(c.seed)

        def make(n: int) -> TensorDataset:
            x = torch.rand(n, 1, generator=g) * 2 - 1
            y = torch.sin(3 * math.pi * x) * (1 - x.abs()) + 0.05 * torch.randn(n, 1, generator=g)
            return TensorDataset(x, y)

        return DataModule(make(c.samples), make(c.samples // 8), make(c.samples // 8),
                          batch_size=c.batch_size, eval_batch_size=1024, seed=c.seed)

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The model: each model task defines it."""

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        pred = self.model(x)
        return {"loss": self.criterion(pred, y), "mae": (pred - y).abs().mean()}
