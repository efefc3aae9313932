"""Classification of points on interleaved 2-D spirals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Range, Task
from workbench.extensions import BatchLeakageCheck, EarlyStopping


def spirals(n: int, arms: int, noise: float, generator: torch.Generator) -> TensorDataset:
    """``n`` points on ``arms`` spirals; the label is the spiral a point lies on."""
    labels = torch.randint(arms, (n,), generator=generator)
    radius = torch.rand(n, generator=generator)
    angle = radius * 3 * math.pi + labels * (2 * math.pi / arms)
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    x = x + noise * torch.randn(n, 2, generator=generator)
    return TensorDataset(x, labels)


class SpiralClassification(Task):
    """Tell apart the arms of 2-D spirals with an MLP (cross-entropy, accuracy)."""

    @dataclass
    class Config:
        epochs: int = 8
        lr: float = 1e-2
        batch_size: int = 64
        hidden: Annotated[int, Range(1, None)] = 128
        arms: Annotated[int, Range(2, None)] = 3
        samples: Annotated[int, Range(5, None)] = 12000  # a fifth of it is validated
        noise: Annotated[float, Range(0, None, finite=True)] = 0.02
        patience: Annotated[int, Range(1, None)] = 3
        seed: int = 0

    def build_data(self) -> DataModule:
        c = self.config
        g = torch.Generator().manual_seed(c.seed)
        return DataModule(
            train=spirals(c.samples, c.arms, c.noise, g),
            val=spirals(c.samples // 5, c.arms, c.noise, g),
            test=spirals(c.samples // 5, c.arms, c.noise, g),
            batch_size=c.batch_size,
            eval_batch_size=1024,
            seed=c.seed,
        )

    def build_model(self) -> nn.Module:
        h = self.config.hidden
        return nn.Sequential(nn.Linear(2, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                             nn.Linear(h, self.config.arms))

    def build_criterion(self) -> nn.Module:
        return nn.CrossEntropyLoss()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        return {"loss": self.criterion(logits, y),
                "accuracy": (logits.argmax(dim=1) == y).float().mean()}

    def extensions(self) -> list[object]:
        return [BatchLeakageCheck(), EarlyStopping("accuracy", mode="max", patience=self.config.patience)]


if __name__ == "__main__":
    raise SystemExit(SpiralClassification.main())
