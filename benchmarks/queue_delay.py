"""Benchmark: the run queue's scheduling delay against a plain launch, in the same run.

In a fresh copy of the quickstart project (``[queue] max_running = 1``), it queues N tiny
runs (``epochs=1, samples=200``, CPU) before the queue runner starts, then lets the runner
work through them one at a time. For each run after the first:

* **queue delay** = when its supervisor process started (``supervisor_create_time``)
  minus when the run before it ended (``ended_at``: its slot freed).

Then, in the same project, it times K plain launches (``workbench.runs.launch.launch``):

* **plain launch** = when the supervisor process started minus when ``launch()`` was
  called (the launch check, the snapshot, ``run.toml``, then the supervisor) — what a user
  waits for with ``workbench run``, and the queue's overhead is compared with it.

It prints the medians and the ratio queue delay / plain launch (the machine is shared and
noisy: the ratio, not the seconds, is the figure). The runner looks at the index every
50 ms and runs a pass when it changed (at most every 0.1 s, at least every 0.5 s), so the
delay should be a fraction of a second. Process start times have a resolution of one clock
tick (10 ms), so a single delay can read a few ms below zero.

Usage: python benchmarks/queue_delay.py [--runs N] [--launches K]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from support.projects import clean_env, kill_run_processes, make_project, wait_ended  # noqa: E402

from workbench.project import load_project  # noqa: E402
from workbench.runs.launch import LaunchRequest, launch  # noqa: E402
from workbench.runs.locks import FileLock  # noqa: E402
from workbench.runs.queue import enqueue, ensure_queue_runner  # noqa: E402
from workbench.store import RunIndex  # noqa: E402

TINY = ["epochs=1", "samples=200"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="Queued runs (N-1 delays).")
    parser.add_argument("--launches", type=int, default=3, help="Plain launches for the baseline.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ.update(clean_env(base))
        os.environ.pop("WORKBENCH_STALE_AFTER", None)
        root = make_project(base)
        with (root / "workbench.toml").open("a") as fh:
            fh.write("\n[queue]\nmax_running = 1\n")
        project = load_project(root)
        index = RunIndex(project.index_path)
        try:
            with FileLock(project.state_dir / "queue.lock"):  # all wait before the runner starts
                queued = [enqueue(project, LaunchRequest("SineRegression", TINY, device="cpu"), index=index)
                          for _ in range(args.runs)]
            ensure_queue_runner(project)
            ended = wait_ended(root, [r.id for r in queued])
            rows = [index.get_run(r.id) for r in queued]
            delays = [nxt.supervisor_create_time - prev.ended_at
                      for prev, nxt in zip(rows, rows[1:])
                      if nxt is not None and prev is not None and nxt.supervisor_create_time and prev.ended_at]
            statuses = sorted({r.status.value for r in ended.values()})

            plain = []
            launched = []
            for _ in range(args.launches):
                before = time.time()
                run = launch(project, LaunchRequest("SineRegression", TINY, device="cpu"), index=index)
                launched.append(run.id)
                plain.append(index.get_run(run.id).supervisor_create_time - before)
                wait_ended(root, [run.id])  # one at a time, as the queue ran them
        finally:
            index.close()
            kill_run_processes(root)
    queue_s = statistics.median(delays)
    plain_s = statistics.median(plain)
    print(f"queued runs: {len(queued)} ({', '.join(statuses)}); plain launches: {len(launched)}")
    print(f"queue delay (slot freed -> next supervisor started): median {queue_s * 1000:.0f} ms "
          f"[{', '.join(f'{d * 1000:.0f}' for d in delays)}]")
    print(f"plain launch (launch() called -> supervisor started): median {plain_s * 1000:.0f} ms "
          f"[{', '.join(f'{d * 1000:.0f}' for d in plain)}]")
    print(f"ratio queue delay / plain launch: {queue_s / plain_s:.2f}")


if __name__ == "__main__":
    main()
