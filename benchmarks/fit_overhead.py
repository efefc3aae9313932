"""Task.fit() with the default extensions vs a hand-written PyTorch loop.

The same MLP, data, shuffling and steps, in one process, alternating over several rounds.
Prints the median time of each, their ratio (goal: <= 1.02), and whether the final weights
are identical (goal: torch.equal). The hand-written loop keeps each step's loss as a float
(`loss.item()`), as any loop that reports a curve does; workbench logs it to a sink.

    .venv/bin/python benchmarks/fit_overhead.py [--rounds 7] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workbench import Task
from workbench.extensions import default_extensions
from workbench.sinks import MemorySink

SAMPLES, FEATURES, HIDDEN, BATCH = 8192, 32, 128, 64


def make_data(seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(SAMPLES, FEATURES, generator=g)
    y = x[:, :1].sin() + 0.1 * torch.randn(SAMPLES, 1, generator=g)
    return TensorDataset(x, y)


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN),
                         nn.ReLU(), nn.Linear(HIDDEN, 1))


def make_loader(data: TensorDataset, seed: int) -> DataLoader:
    return DataLoader(data, batch_size=BATCH, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


class Bench(Task):
    """The benchmark's task: an MLP on random features."""

    @dataclass
    class Config:
        epochs: int = 3
        lr: float = 1e-3
        seed: int = 0

    def build_data(self):
        return make_loader(self.dataset, self.config.seed)

    def build_model(self):
        return make_model()

    def build_criterion(self):
        return nn.MSELoss()


def run_workbench(data: TensorDataset, epochs: int) -> tuple[float, nn.Module]:
    task = Bench({"epochs": epochs}, device="cpu", sink=MemorySink())
    task.dataset = data
    for ext in default_extensions():
        task.attach(ext)
    start = time.perf_counter()
    task.fit()
    return time.perf_counter() - start, task.raw_model


def run_hand(data: TensorDataset, epochs: int) -> tuple[float, nn.Module]:
    start = time.perf_counter()
    torch.manual_seed(0)
    loader = make_loader(data, 0)
    model = make_model()
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return time.perf_counter() - start, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    # Seeding happens before the data in both (Task.setup seeds first; the hand loop
    # seeds at its start), so both see the same data, init and shuffling.
    data = make_data(1)
    run_workbench(data, 1), run_hand(data, 1)  # warm-up: allocator, kernels, imports
    wb_times, hand_times = [], []
    identical = True
    for i in range(args.rounds):
        order = (run_workbench, run_hand) if i % 2 == 0 else (run_hand, run_workbench)
        results = {fn: fn(data, args.epochs) for fn in order}
        wb_times.append(results[run_workbench][0])
        hand_times.append(results[run_hand][0])
        wb_model, hand_model = results[run_workbench][1], results[run_hand][1]
        identical &= all(torch.equal(a, b) for a, b in
                         zip(wb_model.state_dict().values(), hand_model.state_dict().values()))
    steps = args.epochs * (SAMPLES // BATCH)
    wb, hand = statistics.median(wb_times), statistics.median(hand_times)
    # Each round runs both back to back: the ratio within a round cancels the machine's
    # drift (shared cores, frequency), which moves whole rounds by tens of percent here.
    paired = statistics.median(w / h for w, h in zip(wb_times, hand_times))
    print(f"fit overhead: {args.rounds} rounds x {steps} steps, MLP {FEATURES}-{HIDDEN}-{HIDDEN}-1, "
          f"batch {BATCH}, {torch.get_num_threads()} threads")
    print(f"  hand-written loop   median {hand:.3f} s  ({hand / steps * 1e6:.0f} us/step)")
    print(f"  workbench Task.fit  median {wb:.3f} s  ({wb / steps * 1e6:.0f} us/step)")
    print(f"  ratio workbench/hand-written: {paired:.3f} (median of per-round ratios; "
          f"ratio of medians {wb / hand:.3f})  (goal <= 1.02)")
    print(f"  per-step overhead: {(wb - hand) / steps * 1e6:+.1f} us")
    print(f"  final weights identical (torch.equal): {identical}")


if __name__ == "__main__":
    main()
