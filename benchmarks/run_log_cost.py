"""``run.log({...})`` of ``workbench.init()`` against the task path's ``Task.log``, per scalar.

A script reporting through ``workbench.init()`` should pay what a task pays for the same
points. In alternating rounds, in one process, this times per scalar logged:

* a plain ``list.append((key, value, step))`` (the floor),
* ``Task.log(key, value, step)`` of a task whose sink is a ``MetricWriter`` on a real index
  (the task path: what ``training_step``'s ``self.log`` costs),
* ``run.log({k1: v1, ..., k4: v4}, step=s)`` of an attached run (four scalars a call),

each with its background writer flushing to SQLite as it does in a run, and prints
nanoseconds per scalar and the ratios (median over rounds). No asserts: the machines are
shared and noisy. Goal (issue 12): ``run.log`` <= 1 us per scalar, like the task path.

Run: ``.venv/bin/python benchmarks/run_log_cost.py``
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CALLS = 25_000
ROUNDS = 7
KEYS = ("loss", "acc", "lr", "grad_norm")


def main() -> None:
    """Measure and print."""
    folder = Path(tempfile.mkdtemp(prefix="wb-runlog-bench-"))
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    (folder / "workbench.toml").write_text("[project]\n")
    os.chdir(folder)
    os.environ.pop("WORKBENCH_RUN_DIR", None)
    import workbench
    from workbench.store import MetricWriter, RunIndex

    run = workbench.init(config={"bench": True}, task="bench")
    task_run = RunIndex(folder / ".workbench" / "index.db").create_run(task="bench-task").id
    writer = MetricWriter(folder / ".workbench" / "index.db", task_run)

    from torch import nn

    class Bench(workbench.Task):
        """A task that is only logged to."""

        @dataclass
        class Config:
            lr: float = 0.1

        def build_data(self) -> None:
            return None

        def build_model(self) -> nn.Module:
            return nn.Linear(1, 1)

    task = Bench(sink=writer, device="cpu")
    values = {key: 0.5 for key in KEYS}
    sink: list[tuple] = []

    def plain() -> float:
        append = sink.append
        start = time.perf_counter()
        for step in range(CALLS):
            for key, value in values.items():
                append((key, value, step))
        return time.perf_counter() - start

    def task_log() -> float:
        log = task.log
        start = time.perf_counter()
        for step in range(CALLS):
            for key, value in values.items():
                log(key, value, step)
        return time.perf_counter() - start

    def run_log() -> float:
        log = run.log
        start = time.perf_counter()
        for step in range(CALLS):
            log(values, step=step)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"plain": [], "task": [], "run": []}
    for _ in range(ROUNDS):
        sink.clear()
        times["plain"].append(plain())
        times["task"].append(task_log())
        times["run"].append(run_log())
    scalars = CALLS * len(KEYS)
    ns = {name: min(t) / scalars * 1e9 for name, t in times.items()}
    ratio_task = statistics.median(r / t for r, t in zip(times["run"], times["task"]))
    ratio_plain = statistics.median(r / p for r, p in zip(times["run"], times["plain"]))
    print(f"ns per scalar (best of {ROUNDS} rounds, {scalars} scalars each, {len(KEYS)} a call):")
    print(f"  list.append (floor)        {ns['plain']:7.0f}")
    print(f"  Task.log (task path)       {ns['task']:7.0f}")
    print(f"  run.log (workbench.init)   {ns['run']:7.0f}")
    print(f"run.log / Task.log: median {ratio_task:.2f}   run.log / list.append: median {ratio_plain:.2f}")
    print(f"goal <= 1000 ns per scalar: {'met' if ns['run'] <= 1000 else 'NOT met'}")
    writer.close()
    run.finish()


if __name__ == "__main__":
    main()
