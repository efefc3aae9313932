"""Regression of a noisy sine wave: the smallest complete workbench task."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Range, Task


def sine_data(n: int, noise: float, generator: torch.Generator) -> TensorDataset:
    """``n`` points of ``sin(x)`` plus Gaussian noise, with x in [-2π, 2π]."""
    x = (torch.rand(n, 1, generator=generator) * 4 - 2) * math.pi
    y = torch.sin(x) + noise * torch.randn(n, 1, generator=generator)
    return TensorDataset(x, y)


class MLP(nn.Module):
    """A multilayer perceptron with tanh activations."""

    def __init__(self, inputs: int, hidden: int, outputs: int, layers: int = 2) -> None:
        super().__init__()
        sizes = [inputs] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            blocks += [nn.Linear(a, b), nn.Tanh()]
        self.net = nn.Sequential(*blocks, nn.Linear(sizes[-1], outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SineRegression(Task):
    """Fit an MLP to a noisy sine wave (mean squared error)."""

    # workbench test/eval RUN may change these (-s noise=0.3: how does it do on noisier data?)
    eval_fields = ("batch_size", "noise")

    # epochs, lr and batch_size get the trainer's ranges (>= 1, > 0 and finite, >= 1);
    # the task declares the ranges of its own fields with Annotated[TYPE, Range(...)].
    @dataclass
    class Config:
        epochs: int = 5
        lr: float = 3e-3
        batch_size: int = 32
        hidden: Annotated[int, Range(1, None)] = 64
        layers: Annotated[int, Range(0, None)] = 2  # 0: a straight line
        samples: Annotated[int, Range(10, None)] = 20000  # a tenth of it is validated
        noise: Annotated[float, Range(0, None, finite=True)] = 0.1
        seed: int = 0

    def build_data(self) -> DataModule:
        c = self.config
        g = torch.Generator().manual_seed(c.seed)
        return DataModule(
            train=sine_data(c.samples, c.noise, g),
            val=sine_data(c.samples // 10, c.noise, g),
            test=sine_data(c.samples // 10, 0.0, g),
            batch_size=c.batch_size,
            eval_batch_size=1024,
            seed=c.seed,
        )

    def build_model(self) -> nn.Module:
        return MLP(1, self.config.hidden, 1, layers=self.config.layers)

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()


if __name__ == "__main__":
    raise SystemExit(SineRegression.main())
