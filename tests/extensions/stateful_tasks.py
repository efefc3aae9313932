"""Tasks that keep training state on ``self``, written the natural way (for the tests of
checkpointed attributes and of the checkpoint completeness check).

- :class:`CarriedLSTM`: a tiny LSTM over one long series cut into consecutive chunks
  (truncated back-propagation through time); the hidden state is carried from batch to batch
  (and epoch to epoch) in ``self.hidden``, as the original script does.
- :class:`InPlaceEMA`: a small regression that keeps an exponential moving average of its
  weights, both as a plain tensor (``self.ema``) and as a copy of the model
  (``self.ema_model``), each updated in place (``mul_().add_()``).

Each has a ``…Declared`` twin that names the state in ``checkpointed``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Task

__all__ = ["CarriedLSTM", "CarriedLSTMDeclared", "InPlaceEMA", "InPlaceEMADeclared"]


class Sequencer(nn.Module):
    """An LSTM and a linear head: the next value of a series from the ones before."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor, hidden=None):
        out, hidden = self.lstm(x, hidden)
        return self.head(out), hidden


class CarriedLSTM(Task):
    """Predict a noisy sine's next value with an LSTM whose state runs across batches."""

    @dataclass
    class Config:
        epochs: int = 3
        lr: float = 0.02
        chunks: int = 6  # batches per epoch (one chunk each, in order)
        chunk_len: int = 8
        hidden_size: int = 6
        seed: int = 0

    def build_data(self) -> DataModule:
        c = self.config
        n = c.chunks * c.chunk_len + 1
        g = torch.Generator().manual_seed(7)
        series = torch.sin(0.3 * torch.arange(n, dtype=torch.float32)) + 0.05 * torch.randn(n, generator=g)
        x = series[:-1].reshape(c.chunks, c.chunk_len, 1)
        y = series[1:].reshape(c.chunks, c.chunk_len, 1)
        return DataModule(TensorDataset(x, y), TensorDataset(x[:3], y[:3]), batch_size=1, shuffle=False)

    def build_model(self) -> nn.Module:
        self.hidden = None  # set once here; training_step carries it on
        return Sequencer(self.config.hidden_size)

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()

    def training_step(self, batch, batch_idx):
        x, y = batch
        out, hidden = self.model(x, self.hidden)
        self.hidden = tuple(h.detach() for h in hidden)
        return self.criterion(out, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out, _ = self.model(x)
        return {"loss": self.criterion(out, y)}


class CarriedLSTMDeclared(CarriedLSTM):
    """:class:`CarriedLSTM` with its hidden state checkpointed."""

    checkpointed = ("hidden",)


class InPlaceEMA(Task):
    """A small MLP on a noisy sine, with an exponential moving average of its weights."""

    @dataclass
    class Config:
        epochs: int = 3
        lr: float = 0.02
        samples: int = 48
        batch_size: int = 8
        decay: float = 0.8
        seed: int = 0

    def build_data(self) -> DataModule:
        c = self.config
        g = torch.Generator().manual_seed(11)
        x = torch.rand(c.samples + 16, 1, generator=g) * 6 - 3
        y = torch.sin(x) + 0.1 * torch.randn(c.samples + 16, 1, generator=g)
        return DataModule(TensorDataset(x[:c.samples], y[:c.samples]), TensorDataset(x[c.samples:], y[c.samples:]),
                          batch_size=c.batch_size, seed=c.seed)

    def build_model(self) -> nn.Module:
        model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
        self.ema = torch.zeros(8)  # of the first layer's bias
        self.ema_model = copy.deepcopy(model)
        return model

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()

    def training_step(self, batch, batch_idx):
        result = super().training_step(batch, batch_idx)
        d = self.config.decay
        with torch.no_grad():
            self.ema.mul_(d).add_(self.model[0].bias, alpha=1 - d)
            for avg, param in zip(self.ema_model.parameters(), self.model.parameters()):
                avg.mul_(d).add_(param, alpha=1 - d)
        return result


class InPlaceEMADeclared(InPlaceEMA):
    """:class:`InPlaceEMA` with both averages checkpointed."""

    checkpointed = ("ema", "ema_model")
