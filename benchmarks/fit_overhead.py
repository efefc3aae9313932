"""Task.fit() with the default extensions vs a hand-written PyTorch loop.

The same MLP, data, shuffling and steps, in one process, alternating over several rounds.
Prints the median time of each, their ratio (goal: <= 1.02), and whether the final weights
are identical (goal: torch.equal). The hand-written loop keeps each step's loss as a float
(`loss.item()`), as any loop that reports a curve does; workbench logs it to a sink.

It then reports the cost of deterministic mode (``docs/resume.md``, "Runs that repeat"):
part of it lives in the environment a process starts with (``MKL_CBWR`` …), so each side
is a fresh process — the plain environment, or deterministic mode's variables plus
``apply_numerics(True)`` — timing ``Task.fit`` after a warm-up, alternating over rounds.

    .venv/bin/python benchmarks/fit_overhead.py [--rounds 7] [--epochs 3] [--deterministic-rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
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


def fit_child(epochs: int, deterministic: bool) -> None:
    """One side of the deterministic-mode comparison, in a fresh process: one JSON line."""
    if deterministic:
        from workbench.core.numerics import apply_numerics

        apply_numerics(True)
    data = make_data(1)
    run_workbench(data, 1)  # warm-up, as in the main comparison
    cpu = time.process_time()
    seconds, model = run_workbench(data, epochs)
    cpu = time.process_time() - cpu
    weights = b"".join(t.contiguous().numpy().tobytes() for t in model.state_dict().values())
    import hashlib

    print(json.dumps({"seconds": seconds, "cpu": cpu, "weights": hashlib.sha256(weights).hexdigest()[:12],
                      "threads": torch.get_num_threads()}))


def deterministic_cost(rounds: int, epochs: int) -> None:
    """Time Task.fit in fresh processes, plain and in deterministic mode, alternating."""
    from workbench.runs.numerics import DETERMINISTIC_ENV, is_numerics_var

    base = {k: v for k, v in os.environ.items() if not is_numerics_var(k)}
    root = str(Path(__file__).resolve().parent.parent)
    base["PYTHONPATH"] = root + os.pathsep + base.get("PYTHONPATH", "") if base.get("PYTHONPATH") else root

    def one(deterministic: bool) -> dict:
        env = {**base, **(DETERMINISTIC_ENV if deterministic else {})}
        command = [sys.executable, __file__, "--epochs", str(epochs), "--child-fit",
                   "deterministic" if deterministic else "plain"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    plain, det = [], []
    for i in range(rounds):
        for deterministic in ((False, True) if i % 2 == 0 else (True, False)):
            (det if deterministic else plain).append(one(deterministic))
    ratio = statistics.median(d["seconds"] / p["seconds"] for d, p in zip(det, plain))
    cpu_ratio = statistics.median(d["cpu"] / p["cpu"] for d, p in zip(det, plain))
    print(f"deterministic mode: {rounds} rounds of fresh processes, {epochs} epochs, "
          f"{det[0]['threads']} threads ({', '.join(f'{k}={v}' for k, v in DETERMINISTIC_ENV.items())})")
    print(f"  plain          median {statistics.median(p['seconds'] for p in plain):.3f} s  "
          f"weight sets {len({p['weights'] for p in plain})}")
    print(f"  deterministic  median {statistics.median(d['seconds'] for d in det):.3f} s  "
          f"weight sets {len({d['weights'] for d in det})}")
    # CPU seconds count the work, not the waiting: on a shared machine they vary less.
    print(f"  ratio deterministic/plain: wall {ratio:.3f}, CPU {cpu_ratio:.3f} (medians of per-round ratios)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--deterministic-rounds", type=int, default=5,
                        help="rounds of the deterministic-mode comparison (0: skip it)")
    parser.add_argument("--child-fit", choices=["plain", "deterministic"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_fit:
        fit_child(args.epochs, args.child_fit == "deterministic")
        return
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
    if args.deterministic_rounds > 0:
        deterministic_cost(args.deterministic_rounds, args.epochs)


if __name__ == "__main__":
    main()
