"""What ``run.log({...})`` of ``workbench.init()`` costs a script, per scalar.

Attaches to a fresh run in a temporary project (as a plain script would), then times, per
scalar logged, in alternating rounds:

* a bare ``list.append((key, value, step))`` per scalar (the floor),
* ``run.log({k1: v1, ..., k4: v4}, step=s)`` (four scalars a call, the usual shape),

and prints nanoseconds per scalar and the ratio. Goal: <= 1 us per scalar, the same as the
task path's ``MetricWriter.log``. No asserts: the machines are shared and noisy.

Run: ``.venv/bin/python benchmarks/attach_log_cost.py``
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CALLS = 50_000
ROUNDS = 7
KEYS = ("loss", "acc", "lr", "grad_norm")


def main() -> None:
    """Measure and print."""
    folder = Path(tempfile.mkdtemp(prefix="wb-attach-bench-"))
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    (folder / "workbench.toml").write_text("[project]\n")
    os.chdir(folder)
    os.environ.pop("WORKBENCH_RUN_DIR", None)
    import workbench

    run = workbench.init(config={"bench": True}, task="bench")
    sink: list[tuple] = []
    values = {key: 0.5 for key in KEYS}

    def bare() -> float:
        append = sink.append
        start = time.perf_counter()
        for step in range(CALLS):
            for key, value in values.items():
                append((key, value, step))
        return time.perf_counter() - start

    def attached() -> float:
        log = run.log
        start = time.perf_counter()
        for step in range(CALLS):
            log(values, step=step)
        return time.perf_counter() - start

    ratios, ours = [], []
    for _ in range(ROUNDS):
        sink.clear()
        base = bare()
        mine = attached()
        ratios.append(mine / base)
        ours.append(mine)
    per_scalar = min(ours) / (CALLS * len(KEYS)) * 1e9
    print(f"run.log: {per_scalar:.0f} ns per scalar (best of {ROUNDS}, {len(KEYS)} scalars a call)")
    print(f"ratio to a bare list.append per scalar: median {statistics.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"goal <= 1000 ns per scalar: {'met' if per_scalar <= 1000 else 'NOT met'}")
    run.finish()


if __name__ == "__main__":
    main()
