"""What a chart of a million-point series costs: ``RunIndex.series`` vs reading the points.

Builds a 1,000,000-point series (through the normal write path, so the summaries are
kept), then times:

* ``RunIndex.series(run, key, max_points=1000)`` (goal <= 50 ms),
* the baseline: a full read of the series, ``SELECT step, value ... ORDER BY step``,
* for reference, a min/max/last-per-bucket ``GROUP BY`` computed in SQL straight from the
  points (what a query without the summaries has to do),

and prints the ratios. No asserts: these machines are shared and noisy.

Run: ``.venv/bin/python benchmarks/series_query.py``
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from workbench.store import RunIndex

POINTS = 1_000_000
BATCH = 50_000
MAX_POINTS = 1000


def _times(query: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        query()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    """Build the series, measure and print."""
    folder = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    try:
        index = RunIndex(folder / "index.db")
        run_id = index.create_run(task="bench").id
        start = time.perf_counter()
        for first in range(0, POINTS, BATCH):
            index.add_metrics(run_id, [
                ("loss", math.sin(step / 5000) + (5.0 if step == 654_321 else 0.0), step)
                for step in range(first, first + BATCH)
            ])
        built = time.perf_counter() - start
        conn = index.connection

        def downsampled() -> list:
            return index.series(run_id, "loss", max_points=MAX_POINTS)

        def full_read() -> list:
            return conn.execute(
                "SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step",
                (run_id, "loss"),
            ).fetchall()

        buckets = MAX_POINTS // 3

        def sql_group_by() -> list:
            return conn.execute(
                "SELECT (step * ?) / ? AS bucket, min(value), max(value), max(step)"
                " FROM metrics WHERE run_id = ? AND key = ? GROUP BY bucket",
                (buckets, POINTS, run_id, "loss"),
            ).fetchall()

        result = downsampled()
        ours = _times(downsampled, 20)
        full = _times(full_read, 3)
        grouped = _times(sql_group_by, 3)
        best, median = min(ours), statistics.median(ours)
        print(f"series of {POINTS:,} points (written in {built:.1f} s through add_metrics)")
        print(f"  series(max_points={MAX_POINTS})        best {best * 1e3:7.1f} ms, median"
              f" {median * 1e3:7.1f} ms -> {len(result)} points; spike kept:"
              f" {(654_321, max(v for _, v in result)) in result}")
        print(f"  baseline: full read ORDER BY step  best {min(full) * 1e3:7.1f} ms"
              f" -> {POINTS:,} points")
        print(f"  reference: GROUP BY over points    best {min(grouped) * 1e3:7.1f} ms")
        print(f"  full read / series                 {min(full) / best:9.0f}x faster")
        print(f"  GROUP BY / series                  {min(grouped) / best:9.0f}x faster")
        print(f"  goal: <= 50 ms -> {'met' if best <= 0.05 else 'NOT met'}")
        index.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
