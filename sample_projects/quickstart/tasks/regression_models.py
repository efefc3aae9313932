"""Two model tasks that reuse RegressionFramework: an MLP and Fourier features."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from workbench import Range

from regression_framework import RegressionFramework


class FourierFeatures(nn.Module):
    """Maps x to [sin(kπx), cos(kπx)] for k = 1..frequencies."""

    def __init__(self, frequencies: int) -> None:
        super().__init__()
        self.register_buffer("k", torch.arange(1, frequencies + 1, dtype=torch.float32) * math.pi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = x * self.k
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class MLPRegression(RegressionFramework):
    """RegressionFramework with a plain ReLU MLP."""

    @dataclass
    class Config(RegressionFramework.Config):
        hidden: Annotated[int, Range(1, None)] = 64

    def build_model(self) -> nn.Module:
        h = self.config.hidden
        return nn.Sequential(nn.Linear(1, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))


class FourierRegression(RegressionFramework):
    """RegressionFramework with Fourier features and a linear read-out."""

    @dataclass
    class Config(RegressionFramework.Config):
        frequencies: Annotated[int, Range(1, None)] = 8
        lr: float = 2e-2

    def build_model(self) -> nn.Module:
        return nn.Sequential(FourierFeatures(self.config.frequencies),
                             nn.Linear(2 * self.config.frequencies, 1))


if __name__ == "__main__":
    import sys

    tasks = {"mlp": MLPRegression, "fourier": FourierRegression}
    name = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in tasks else "mlp"
    raise SystemExit(tasks[name].main())
