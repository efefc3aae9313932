"""Per-batch cost of extension hooks, as the training loop pays it.

Runs the same loop of no-op "training" batches through Task.fit() with 0 and with 5
extensions attached (each hooking before_batch and after_batch and asking for fixtures),
in one process, alternating; prints the extra microseconds per batch. Goal: a few
microseconds with five extensions.

    .venv/bin/python benchmarks/hook_dispatch.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from workbench import Task

BATCHES = 20000


class Ext:
    """Asks for a few fixtures before and after each batch, and does nothing."""

    def before_batch(self, batch, batch_idx, state):
        pass

    def after_batch(self, loss, outputs, state, model):
        pass


class NoOp(Task):
    """Batches that cost (almost) nothing, so the loop's own overhead shows."""

    @dataclass
    class Config:
        epochs: int = 1

    def build_data(self):
        one = torch.zeros(1)
        return [one] * BATCHES  # a plain list of batches: the loop iterates it

    def build_model(self):
        return nn.Identity()

    def build_optimizer(self, model):
        return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.0)

    def prepare_batch(self, batch):
        return batch

    def training_step(self, batch, batch_idx):
        return batch

    def backward(self, loss):
        pass

    def optimizer_step(self):
        pass


def timed(extensions: int) -> float:
    task = NoOp(device="cpu", extensions=[Ext() for _ in range(extensions)])
    task.setup()
    start = time.perf_counter()
    task.fit()
    return (time.perf_counter() - start) / BATCHES * 1e6


def main() -> None:
    timed(0), timed(5)  # warm-up
    bare, five = [], []
    for i in range(7):
        for n, sink in ((0, bare), (5, five)) if i % 2 == 0 else ((5, five), (0, bare)):
            sink.append(timed(n))
    b, f = statistics.median(bare), statistics.median(five)
    print(f"hook dispatch: {BATCHES} batches, median of 7 rounds")
    print(f"  loop with no extension    {b:.2f} us/batch")
    print(f"  loop with 5 extensions    {f:.2f} us/batch  (10 hooks, 7 fixtures each batch)")
    print(f"  cost of 5 extensions      {f - b:.2f} us/batch  (ratio {f / b:.2f}; goal: a few us)")


if __name__ == "__main__":
    main()
