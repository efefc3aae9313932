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


class DecisionBoundary:
    """Logs the model's decision boundary after every epoch: a ``size``×``size`` image of the
    plane, each pixel the arms' colours mixed by the predicted probabilities."""

    def __init__(self, size: int = 48, extent: float = 1.25) -> None:
        self.size, self.extent = size, extent

    def after_epoch(self, task: Task) -> None:
        if task.backend.rank != 0 or task.run_dir is None:
            return  # only the main process keeps images, and only into a run folder
        model = task.raw_model
        axis = torch.linspace(-self.extent, self.extent, self.size, device=task.device)
        y, x = torch.meshgrid(-axis, axis, indexing="ij")  # row 0 is the top of the plane
        was_training = model.training
        model.eval()
        with torch.no_grad():
            probs = model(torch.stack([x.flatten(), y.flatten()], dim=1)).float().softmax(dim=1)
        model.train(was_training)
        hues = torch.arange(probs.shape[1], dtype=torch.float32, device=probs.device) / probs.shape[1]
        palette = 0.5 + 0.45 * torch.stack([torch.cos(2 * math.pi * (hues + k / 3)) for k in range(3)], dim=1)
        image = (probs @ palette).T.reshape(3, self.size, self.size)  # CHW, in [0, 1]
        task.log_image("boundary", image.clamp(0, 1))


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
        return [BatchLeakageCheck(), EarlyStopping("accuracy", mode="max", patience=self.config.patience),
                DecisionBoundary()]


if __name__ == "__main__":
    raise SystemExit(SpiralClassification.main())
