"""What one MetricWriter.log() call costs the training loop.

Prints nanoseconds per call for:

* a bare ``list.append((k, v, s, t))``, and the same with ``time.time()`` read each call
  (the floor: what log() has to do at least),
* a call of an empty Python function with three arguments,
* ``MetricWriter.log()`` with the flusher idle (the hot path alone; goal <= 1 us),
* ``MetricWriter.log()`` while the flusher writes every 0.25 s (the amortised cost when
  a loop does nothing but log, flusher's share of the GIL included),

and the ratios of log() to the baselines. No asserts: these machines are shared and noisy.

Run: ``.venv/bin/python benchmarks/log_cost.py``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from workbench.store import MetricWriter, RunIndex

CALLS = 200_000
REPEATS = 5


def _best(loop) -> float:
    """Best seconds per call over REPEATS runs, minus the cost of the empty loop."""
    empty = min(_time(lambda: None, bare=True) for _ in range(REPEATS))
    return min(_time(loop) for _ in range(REPEATS)) - empty


def _time(loop, bare: bool = False) -> float:
    start = time.perf_counter()
    loop() if not bare else _empty_loop()
    return (time.perf_counter() - start) / CALLS


def _empty_loop() -> None:
    for step in range(CALLS):
        pass


def main() -> None:
    """Measure and print."""
    folder = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    db_path = folder / "index.db"
    run_id = RunIndex(db_path).create_run(task="bench").id

    sink: list[tuple] = []
    append = sink.append
    now = time.time()

    def bare_append() -> None:
        for step in range(CALLS):
            append(("loss", 0.5, step, now))
        sink.clear()

    def append_with_clock() -> None:
        clock = time.time
        for step in range(CALLS):
            append(("loss", 0.5, step, clock()))
        sink.clear()

    def noop(key: str, value: float, step: int) -> None:
        pass

    def function_call() -> None:
        for step in range(CALLS):
            noop("loss", 0.5, step)

    idle = MetricWriter(db_path, run_id, flush_interval=3600)

    def log_idle() -> None:
        log = idle.log
        for step in range(CALLS):
            log("loss", 0.5, step)
        idle._buffers["loss"].clear()  # keep memory flat between repeats; nothing is written

    busy = MetricWriter(db_path, run_id)
    offset = [0]

    def log_busy() -> None:
        log = busy.log
        base = offset[0]
        offset[0] += CALLS
        for step in range(base, base + CALLS):
            log("loss", 0.5, step)

    results = {
        "list.append((k, v, s, t))": _best(bare_append),
        "list.append((k, v, s, time.time()))": _best(append_with_clock),
        "empty function call f(k, v, s)": _best(function_call),
        "MetricWriter.log, flusher idle": _best(log_idle),
        "MetricWriter.log, flusher writing": _best(log_busy),
    }
    busy.close()
    idle.close()
    fresh = RunIndex(db_path).create_run(task="bench").id
    writer = MetricWriter(db_path, fresh)
    start = time.perf_counter()
    log = writer.log
    for step in range(CALLS):
        log("loss", 0.5, step)
    writer.close()
    end_to_end = (time.perf_counter() - start) / CALLS

    print(f"calls per measurement: {CALLS:,}, best of {REPEATS}, empty-loop cost subtracted")
    for name, seconds in results.items():
        print(f"  {name:<36} {seconds * 1e9:8.0f} ns/call")
    hot = results["MetricWriter.log, flusher idle"]
    print(f"  log (idle) / list.append            {hot / results['list.append((k, v, s, t))']:8.2f}x")
    print(f"  log (idle) / append with clock      {hot / results['list.append((k, v, s, time.time()))']:8.2f}x")
    print(f"  log (idle) / function call          {hot / results['empty function call f(k, v, s)']:8.2f}x")
    print(f"  goal: log <= 1000 ns/call -> {'met' if hot <= 1e-6 else 'NOT met'} ({hot * 1e9:.0f} ns)")
    print(f"  log {CALLS:,} points then close (durable): {end_to_end * 1e9:.0f} ns/point end to end")


if __name__ == "__main__":
    main()
