"""What the supervisor's system-metrics sampling costs a training process.

The supervisor (never the training loop) samples CPU %, RSS of the run's process tree and
system memory every ``WORKBENCH_SYS_EVERY`` seconds (5 by default) and writes them to the
index as ``sys/*`` points. This measures how much that slows a CPU-bound training process:
the same fixed workload (a small MLP trained for a fixed number of steps, 1 intra-op thread)
runs in a child process, alternately with no sampler and with a ``SystemSampler`` sampling it
and writing to a real index from this process — at the default interval and at 0.05 s
(a hundred times more often, to make any cost visible). Prints seconds per round and the
ratios against the unsampled baseline measured in the same run. No asserts: the machine is
shared and noisy.

Run: ``.venv/bin/python benchmarks/sampler_overhead.py``
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from workbench.runs.sampler import SystemSampler
from workbench.store import RunIndex

STEPS = 1500
ROUNDS = 3

WORKLOAD = f"""
import torch
torch.set_num_threads(1)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.Tanh(), torch.nn.Linear(256, 1))
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
x, y = torch.randn(128, 64), torch.randn(128, 1)
for _ in range({STEPS}):
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
"""


def _round(every: float | None, index: RunIndex, run_id: str) -> float:
    """Seconds the workload's training loop takes, sampled every ``every`` s (None: never)."""
    child = subprocess.Popen([sys.executable, "-c", "import torch, sys; sys.stdout.write('ready\\n'); "
                              "sys.stdout.flush(); sys.stdin.readline()\n" + WORKLOAD],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert child.stdout is not None and child.stdin is not None
    child.stdout.readline()  # torch imported: time the training alone
    stop = threading.Event()
    sampler = SystemSampler(child.pid, every=every) if every else None

    def sample() -> None:
        while not stop.wait(every):
            index.add_metrics(run_id, sampler.sample(), attempt=1)

    thread = threading.Thread(target=sample, daemon=True) if sampler else None
    began = time.perf_counter()
    child.stdin.write("go\n")
    child.stdin.flush()
    if thread:
        thread.start()
    child.wait()
    took = time.perf_counter() - began
    stop.set()
    if thread:
        thread.join()
    return took


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        index = RunIndex(Path(tmp) / "index.db")
        run_id = index.create_run(task="bench").id
        modes = {"none": None, "every 5 s (default)": 5.0, "every 0.05 s": 0.05}
        times: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(ROUNDS):
            for name, every in modes.items():  # interleaved: drift hits every mode alike
                times[name].append(_round(every, index, run_id))
        base = statistics.median(times["none"])
        print(f"training loop of {STEPS} steps, {ROUNDS} rounds each (median):")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  sampler {name:<20} {median:7.3f} s   ratio {median / base:5.3f}")
        index.close()


if __name__ == "__main__":
    main()
