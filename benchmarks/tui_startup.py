"""Benchmark: the app on a big index — first paint, one refresh tick, and log-to-chart latency.

Fills (once; the file is cached in /tmp between invocations) an index with 10,000 runs and
10,000,000 metric points: 9,999 runs of 900 points each and, as the newest run (the one
the main screen selects and charts at start), one run of 1,000,900 points. 20 runs are
live. A second cached index holds 100,000 runs of 100 points each (10,000,000 points).
Then, in one process, against a baseline measured in the same run (an empty index):

* first paint: from starting the app (headless) to the main screen painted with its runs
  (goals: <= 0.3 s with 10,000 runs, <= 0.8 s with 100,000; Textual's DataTable takes
  ~1.8 s for 10k rows added at once, so the table is filled a page at a time);
* one refresh tick with 20 runs live, each having logged new points and progress since the
  last tick: the index reads (in the worker thread) plus merging them on the event loop
  (goal <= 20 ms);
* latency from ``MetricWriter.log()`` in another thread to the point being in the chart's
  data in the app, and to the overlay's chart drawn with it (the run marked), at the app's
  normal tick (goal <= 1 s median).

Also printed: the cold import time of ``workbench.tui.app`` (a subprocess), which this
machine's Python pays before the app can start.

Usage: python benchmarks/tui_startup.py [--refill] [--paint-only] [--repeat N]

``--repeat N`` measures the first paints N times (empty, 10k, 100k in turn) and prints the
medians and ranges; ``--paint-only`` leaves out the import, the tick and the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.store import MetricWriter, RunIndex  # noqa: E402
from workbench.runs.liveness import process_create_time  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "workbench-tui-bench-v2"
RUNS = 10_000
POINTS_PER_RUN = 900
BIG_RUN_POINTS = 10_000_000 - (RUNS - 1) * POINTS_PER_RUN  # 1,000,900: 10,000,000 points in all
HUGE_RUNS = 100_000
HUGE_POINTS_PER_RUN = 100
LIVE = 20
PROBE = {"devices": ["cpu"], "default": "cpu"}


def make_project(root: Path) -> Path:
    """A project folder with the quickstart's tasks (for discovery) and an empty state folder."""
    if not root.exists():
        shutil.copytree(REPO / "sample_projects" / "quickstart", root,
                        ignore=shutil.ignore_patterns(".workbench", "__pycache__"))
    return root


def fill(root: Path, runs: int = RUNS, per_run: int = POINTS_PER_RUN, newest: int = BIG_RUN_POINTS) -> float:
    """Write ``runs`` runs of ``per_run`` points (the newest one ``newest``) with bulk inserts
    on the store's connection; returns seconds."""
    began = time.perf_counter()
    state = root / ".workbench"
    shutil.rmtree(state, ignore_errors=True)
    now = time.time()
    with RunIndex(state / "index.db") as index:
        conn = index.connection
        conn.execute("PRAGMA synchronous = OFF")
        ids = [f"2b{n:010d}" for n in range(runs)]
        with index.write():
            conn.executemany(
                "INSERT INTO runs (id, name, task, status, created_at, started_at, ended_at, updated_at,"
                " host, device, backend, nproc, precision, config, tags, run_dir, git_head, git_dirty,"
                " snapshot_commit, attempt, step, total_steps, epoch)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'elsewhere', 'cpu', 'single', 1, '32', ?, '[]', ?, ?, ?, ?, 1, ?,"
                " ?, ?)",
                [(run_id, f"run-{n}", "SineRegression" if n % 3 else "MLPRegression",
                  "completed" if n % 7 else "stopped", now - 86400 * 30 + n * 60, now - 86400 * 30 + n * 60 + 2,
                  now - 86400 * 30 + n * 60 + 50, n + 1.0,
                  f'{{"lr": {0.001 * (1 + n % 10)}, "hidden": {64 * (1 + n % 3)}, "epochs": 5}}',
                  str(state / "runs" / run_id), f"{n:040x}", n % 2, f"{n:040x}",
                  _train_steps(per_run), _train_steps(per_run), 5)
                 for n, run_id in enumerate(ids)])
        print(f"  runs written ({time.perf_counter() - began:.1f} s)", flush=True)
        chunk = 500 if runs <= RUNS else 5000
        for start in range(0, runs, chunk):
            with index.write():
                for run_id in ids[start:start + chunk]:
                    total = newest if run_id == ids[-1] else per_run
                    steps = _train_steps(total)  # the rest: val/loss
                    rows = [(run_id, "train/loss", s, 1.0 / (1 + s / 50), now + s, 1) for s in range(1, steps + 1)]
                    every = max(1, steps // (total - steps))
                    rows += [(run_id, "val/loss", s, 1.1 / (1 + s / 50), now + s, 1)
                             for s in range(every, steps + 1, every)][:total - steps]
                    conn.executemany("INSERT INTO metrics (run_id, key, step, value, wall_time, attempt)"
                                     " VALUES (?, ?, ?, ?, ?, ?)", rows)
                    index.rebuild_summaries(run_id)
            print(f"  points of {start + chunk} runs written ({time.perf_counter() - began:.0f} s)", flush=True)
        (count,) = conn.execute("SELECT count(*) FROM metrics").fetchone()
        print(f"  {runs:,} runs, {count:,} points")
    return time.perf_counter() - began


def _train_steps(points: int) -> int:
    """Of a run's ``points``, how many are train/loss (one per step; the rest are val/loss)."""
    return points - 100 if points > 100 else points - 10


def make_live(root: Path) -> list[str]:
    """Mark the newest LIVE runs running in this process (so reconcile leaves them alone)."""
    with RunIndex(root / ".workbench" / "index.db") as index:
        rows = index.list_runs(limit=LIVE)
        pid = os.getpid()
        with index.write():
            for row in rows:
                index.update_run(row.id, status="running", host=None, supervisor_pid=pid,
                                 supervisor_create_time=process_create_time(pid), heartbeat_at=time.time(),
                                 ended_at=None, total_steps=10_000_000)
        return [r.id for r in rows]


def import_seconds() -> float:
    """Cold import of the app module in a fresh interpreter (median of three)."""
    code = "import time; t = time.perf_counter(); import workbench.tui.app; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) for _ in range(3)]
    return statistics.median(times)


async def first_paint(root: Path) -> tuple[float, float]:
    """Seconds from starting the app to the main screen painted with runs, and to all runs read."""
    from workbench.tui.app import WorkbenchApp, make_app

    painted: list[float] = []

    class Timed(WorkbenchApp):
        def on_first_page_read(self, message):  # type: ignore[no-untyped-def]
            super().on_first_page_read(message)
            self.call_after_refresh(lambda: painted.append(time.perf_counter()))

    app = make_app(root, probe=PROBE, poll_interval=0)
    app.__class__ = Timed
    began = time.perf_counter()
    async with app.run_test(size=(160, 45)) as pilot:
        while not painted:
            await asyncio.sleep(0.002)
        paint = painted[0] - began
        while not app.runs.complete:
            await asyncio.sleep(0.005)
        complete = time.perf_counter() - began
        await pilot.pause()
    return paint, complete


async def ticks(root: Path, live: list[str], rounds: int = 15) -> tuple[float, float, int]:
    """Median seconds of one tick's index reads and of merging them; runs changed per tick."""
    from workbench.tui.app import make_app
    from workbench.tui.messages import IndexPolled

    app = make_app(root, probe=PROBE, poll_interval=0)
    db_times, ui_times, changed = [], [], 0
    writers = [MetricWriter(root / ".workbench" / "index.db", run_id, flush_interval=3600) for run_id in live]
    step = 10_000_000
    async with app.run_test(size=(160, 45)) as pilot:
        while not app.runs.complete or app._in_flight:
            await asyncio.sleep(0.01)
        for _ in range(3):  # let the chart load its curve and the headline values arrive
            app.tick()
            while app._in_flight:
                await asyncio.sleep(0.01)
        await pilot.pause()
        for _ in range(rounds):
            step += 1
            for writer in writers:  # what 20 training processes log between two ticks
                for k in range(10):
                    writer.log("train/loss", 0.1, step * 10 + k)
                writer.progress(step, total=10_000_000)
                writer.flush()
            request = app.build_request()
            t0 = time.perf_counter()
            result = app.watcher.poll(request)
            t1 = time.perf_counter()
            app.apply_poll(IndexPolled(result))
            t2 = time.perf_counter()
            db_times.append(t1 - t0)
            ui_times.append(t2 - t1)
            changed = len(result.runs)
            await pilot.pause()
    for writer in writers:
        writer.close()
    return statistics.median(db_times), statistics.median(ui_times), changed


async def latency(root: Path, run_id: str, rounds: int = 6) -> tuple[list[float], list[float]]:
    """Seconds from log() (another thread) to the point in the app's chart data, and to the
    overlay's chart of that metric drawn with it (the run marked, so the main screen overlays it)."""
    from workbench.tui._watcher import SeriesKey
    from workbench.tui.app import make_app
    from workbench.tui.widgets import _chart_plot
    from workbench.tui.widgets.chart import MetricChart

    drawn: list[float] = []  # when a chart of the run's train/loss finished drawing
    original = _chart_plot.Plot.render_strips

    def timed_render(self, *args):  # type: ignore[no-untyped-def]
        try:
            return original(self, *args)
        finally:
            if self._chart.key == "train/loss" and run_id in self._chart.run_ids:
                drawn.append(time.perf_counter())

    _chart_plot.Plot.render_strips = timed_render  # type: ignore[method-assign]
    (root / ".workbench" / "app-state.json").unlink(missing_ok=True)  # no marks from an earlier run
    app = make_app(root, probe=PROBE)  # the normal tick
    key = SeriesKey(run_id, "train/loss")
    in_data, on_screen = [], []
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            app.selection.toggle(run_id)  # marked: the main screen overlays it
            app.selection.pinned = run_id
            deadline = time.perf_counter() + 30
            while key not in app.series.data or not drawn:
                assert time.perf_counter() < deadline, "the overlay never drew the marked run's train/loss"
                await asyncio.sleep(0.01)
            charts = [c for c in app.screen.query(MetricChart) if c.key == "train/loss" and run_id in c.run_ids]
            assert charts, "no chart of train/loss shows the marked run"
            await pilot.pause()
            writer = MetricWriter(root / ".workbench" / "index.db", run_id)
            step = (app.series.data[key].last_step or 0) + 1000
            for _ in range(rounds):
                step += 1
                began = time.perf_counter()
                threading.Thread(target=writer.log, args=("train/loss", 0.05, step)).start()
                while (app.series.data[key].last_step or 0) < step:
                    await asyncio.sleep(0.002)
                arrived = time.perf_counter()
                in_data.append(arrived - began)
                while not drawn or drawn[-1] < arrived:
                    await asyncio.sleep(0.002)
                on_screen.append(drawn[-1] - began)
                await asyncio.sleep(0.3)
            writer.close()
    finally:
        _chart_plot.Plot.render_strips = original  # type: ignore[method-assign]
    return in_data, on_screen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refill", action="store_true", help="fill the cached index again")
    parser.add_argument("--paint-only", action="store_true", help="measure only the first paints")
    parser.add_argument("--repeat", type=int, default=1, help="measure the first paints this many times")
    args = parser.parse_args()
    big = make_project(CACHE / "big")
    huge = make_project(CACHE / "huge")
    empty = make_project(CACHE / "empty")
    for root, sizes in ((big, {}), (huge, {"runs": HUGE_RUNS, "per_run": HUGE_POINTS_PER_RUN,
                                           "newest": HUGE_POINTS_PER_RUN})):
        marker = root / ".workbench" / "filled"
        if args.refill or not marker.exists():
            print(f"filling {root} (cached for the next runs) ...", flush=True)
            took = fill(root, **sizes)
            marker.write_text(f"{took:.1f}\n")
            print(f"filling took {took:.1f} s")
        else:
            print(f"using the cached index in {root} (filled in {marker.read_text().strip()} s; --refill to redo)")
    shutil.rmtree(empty / ".workbench", ignore_errors=True)
    RunIndex(empty / ".workbench" / "index.db").close()
    live = make_live(big)

    if not args.paint_only:
        print(f"\ncold import of workbench.tui.app: {import_seconds():.2f} s (paid before the app starts)")
    asyncio.run(first_paint(empty))  # warm-up: the screens' modules are imported on first use
    bases, paints, huges = [], [], []
    for _ in range(max(1, args.repeat)):
        base_paint, _ = asyncio.run(first_paint(empty))
        paint, complete = asyncio.run(first_paint(big))
        print(f"first paint, app start -> main screen painted: {paint:.3f} s with {RUNS:,} runs, "
              f"{base_paint:.3f} s empty (ratio {paint / base_paint:.2f}); goal <= 0.3 s")
        print(f"  all {RUNS:,} runs in the table after {complete:.3f} s")
        huge_paint, huge_complete = asyncio.run(first_paint(huge))
        print(f"first paint with {HUGE_RUNS:,} runs: {huge_paint:.3f} s (ratio to empty "
              f"{huge_paint / base_paint:.2f}); goal <= 0.8 s")
        print(f"  all {HUGE_RUNS:,} runs in the table after {huge_complete:.3f} s", flush=True)
        bases.append(base_paint)
        paints.append(paint)
        huges.append(huge_paint)
    if len(paints) > 1:
        for name, values in (("empty", bases), (f"{RUNS:,} runs", paints), (f"{HUGE_RUNS:,} runs", huges)):
            print(f"first paint, {name}: median {statistics.median(values):.3f} s "
                  f"(min {min(values):.3f}, max {max(values):.3f}, {len(values)} runs)")
    if args.paint_only:
        return
    base_db, base_ui, _ = asyncio.run(ticks(empty, []))
    db, ui, changed = asyncio.run(ticks(big, live))
    print(f"refresh tick with {LIVE} runs live ({changed} rows changed, their points and headline metric): "
          f"{1000 * (db + ui):.1f} ms = {1000 * db:.1f} ms index reads (worker) + {1000 * ui:.1f} ms merge "
          f"(event loop); empty index {1000 * (base_db + base_ui):.1f} ms "
          f"(ratio {(db + ui) / max(1e-9, base_db + base_ui):.1f}); goal <= 20 ms")
    waits, drawn = asyncio.run(latency(big, live[0]))
    print(f"log() -> point in the chart's data: median {statistics.median(waits):.3f} s, "
          f"max {max(waits):.3f} s over {len(waits)} points (tick 0.5 s, writer flush 0.25 s)")
    print(f"log() -> drawn on the overlay (the run marked): median {statistics.median(drawn):.3f} s, "
          f"max {max(drawn):.3f} s; goal <= 1 s median")


if __name__ == "__main__":
    main()
