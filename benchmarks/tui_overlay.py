"""Benchmark: a refresh tick with 20 live runs, including the repaint — today's single chart
against the main screen's overlay (a 3×3 grid of charts, 8 marked runs in each).

Fills (once; cached in /tmp) an index with 100 runs, each with 8 step-keyed metrics of 300
points and 2 system metrics (``sys/*``, against time) of 100 samples. The 20 newest runs are
live: before each tick, each of them logs 10 new points of every step-keyed metric, a system
sample and its progress (what 20 training processes and their supervisors write in half a
second). Then, in one process, the app at 180×52 (3×3 overlay):

* **single** — no marks: the main screen charts the highlighted live run, as before the
  overlay existed (the baseline, measured in the same run);
* **overlay** — the 8 newest runs marked (one pinned): 9 charts of 8 curves each.

A tick is timed as the index reads (the worker's part), merging them on the event loop, and
the repaint: Textual's screen updates (frames) from the merge until every chart whose curves
changed has drawn itself again, with the charts' own drawing (the braille renderer; plotext
before it) also timed on its own. Textual paints on a 60-per-second timer, so between the
merge and the frame that draws it the event loop waits, idle, up to 1/60 s: that wait is no
work of the tick (keys are handled in it) and is printed on its own, as is "to screen", the
wall time from the reads to the drawn frame, wait included. The app thread's CPU time over
the whole tick is printed too (what a busy machine's load does not inflate), and the slowest
tick (a stall felt as a hitch, e.g. a full garbage collection).
Goal: overlay tick (reads + merge + repaint) ≤ 20 ms.

Usage: python benchmarks/tui_overlay.py [--refill] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.runs.liveness import process_create_time  # noqa: E402
from workbench.store import MetricWriter, RunIndex  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "workbench-tui-overlay-bench-v1"
RUNS = 100
POINTS = 300
SYS_POINTS = 100
LIVE = 20
MARKED = 8
SIZE = (180, 52)
KEYS = ("train/loss", "val/loss", "train/acc", "val/acc", "lr", "grad_norm", "throughput", "epoch_time")
SYS_KEYS = ("sys/cpu_percent", "sys/rss_mb")
PROBE = {"devices": ["cpu"], "default": "cpu"}


def fill(root: Path) -> float:
    """Write the runs and their points with bulk inserts; returns seconds."""
    began = time.perf_counter()
    if not root.exists():
        shutil.copytree(REPO / "sample_projects" / "quickstart", root,
                        ignore=shutil.ignore_patterns(".workbench", "__pycache__"))
    state = root / ".workbench"
    shutil.rmtree(state, ignore_errors=True)
    now = time.time()
    with RunIndex(state / "index.db") as index:
        conn = index.connection
        conn.execute("PRAGMA synchronous = OFF")
        ids = [f"2o{n:010d}" for n in range(RUNS)]
        for n, run_id in enumerate(ids):
            index.create_run(id=run_id, name=f"run-{n}", task="SineRegression", status="completed",
                             created_at=now - 86400 + n * 60, started_at=now - 86400 + n * 60 + 2,
                             ended_at=now - 86400 + n * 60 + 50, host="elsewhere", device="cpu", backend="single",
                             config={"lr": 0.001 * (1 + n % 10)}, run_dir=str(state / "runs" / run_id),
                             step=POINTS, total_steps=POINTS, epoch=3)
        for run_id in ids:
            with index.write():
                rows = []
                for k, key in enumerate(KEYS):
                    rows += [(run_id, key, s, (1 + k) / (1 + s / 30) + 0.01 * math.sin(s), now + s, 1)
                             for s in range(1, POINTS + 1)]
                for key in SYS_KEYS:
                    rows += [(run_id, key, int((now + 5 * s) * 1000), 50 + 10 * math.sin(s / 7), now + 5 * s, 1)
                             for s in range(SYS_POINTS)]
                conn.executemany("INSERT INTO metrics (run_id, key, step, value, wall_time, attempt)"
                                 " VALUES (?, ?, ?, ?, ?, ?)", rows)
                index.rebuild_summaries(run_id)
    return time.perf_counter() - began


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


async def ticks(root: Path, live: list[str], marked: list[str], rounds: int) -> dict[str, float]:
    """Median milliseconds of a tick's parts, with ``marked`` runs marked (none: the single chart)."""
    from textual.screen import Screen

    from workbench.tui.app import make_app
    from workbench.tui.messages import IndexPolled
    from workbench.tui.widgets import chart as chart_module
    from workbench.tui.widgets.chart import MetricChart

    drawing = {"seconds": 0.0, "count": 0}
    # The charts' own drawing: the braille renderer (``render_strips``), or plotext's
    # ``render`` in builds before it.
    hook = "render_strips" if hasattr(chart_module._Plot, "render_strips") else "render"
    original = getattr(chart_module._Plot, hook)

    def timed_render(self, *args):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return original(self, *args)
        finally:
            drawing["seconds"] += time.perf_counter() - began
            drawing["count"] += 1

    setattr(chart_module._Plot, hook, timed_render)
    # Textual's frames: each screen update's start and end (the update timer's callback).
    frames: list[tuple[float, float]] = []
    update = Screen._on_timer_update

    def timed_update(self):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return update(self)
        finally:
            frames.append((began, time.perf_counter()))

    Screen._on_timer_update = timed_update  # type: ignore[method-assign]
    # The app remembers marks and chart options across restarts: each case starts from none.
    (root / ".workbench" / "app-state.json").unlink(missing_ok=True)
    app = make_app(root, probe=PROBE, poll_interval=0)
    writers = [MetricWriter(root / ".workbench" / "index.db", run_id, flush_interval=3600) for run_id in live]
    step = int(time.time() * 1000)  # above every step an earlier run of this benchmark logged
    parts: dict[str, list[float]] = {"reads": [], "merge": [], "repaint": [], "wait": [], "drawing": [], "tick": [],
                                     "screen": [], "cpu": []}
    charts = curves = 0
    redrawn: list[int] = []
    shown: list[MetricChart] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            while not app.runs.complete or app._in_flight:
                await asyncio.sleep(0.01)
            for run_id in marked:
                app.selection.toggle(run_id)
            if marked:
                app.selection.pinned = marked[0]
            for _ in range(4):  # the charts load their curves, the headline values arrive
                app.tick()
                while app._in_flight:
                    await asyncio.sleep(0.01)
                await pilot.pause()
            shown = [c for c in app.screen.query(MetricChart) if c.display and c.key]
            charts = len(shown)
            curves = sum(len(c.run_ids) for c in shown)
            for _ in range(rounds):
                step += 10
                wall = time.time()
                for writer in writers:
                    for key in KEYS:
                        for k in range(10):
                            writer.log(key, 0.1, step + k)
                    for key in SYS_KEYS:
                        writer.log(key, 42.0, int(wall * 1000))
                    writer.progress(step, total=10_000_000)
                    writer.flush()
                drawing["seconds"], drawing["count"] = 0.0, 0
                request = app.build_request()
                c0 = time.thread_time()
                t0 = time.perf_counter()
                result = app.watcher.poll(request)
                t1 = time.perf_counter()
                changes = app.apply_poll(IndexPolled(result))
                t2 = time.perf_counter()
                frames.clear()
                # The repaint: the frames until every chart whose curves changed has drawn
                # itself again (and that frame has ended).
                expected = sum(1 for c in shown if changes.series.intersection(c.wanted))
                redrawn.append(expected)
                deadline = t2 + 2.0
                while (drawing["count"] < expected or not frames) and time.perf_counter() < deadline:
                    await asyncio.sleep(0.0002)
                c3 = time.thread_time()
                t3 = frames[-1][1] if frames else time.perf_counter()
                repaint = sum(end - began for began, end in frames)
                await pilot.pause()
                parts["reads"].append(t1 - t0)
                parts["merge"].append(t2 - t1)
                parts["repaint"].append(repaint)
                parts["wait"].append(t3 - t2 - repaint)
                parts["drawing"].append(drawing["seconds"])
                parts["tick"].append(t2 - t0 + repaint)
                parts["screen"].append(t3 - t0)
                parts["cpu"].append(c3 - c0)
    finally:
        setattr(chart_module._Plot, hook, original)
        Screen._on_timer_update = update  # type: ignore[method-assign]
        for writer in writers:
            writer.close()
    out = {name: 1000 * statistics.median(values) for name, values in parts.items()}
    out["worst"] = 1000 * max(parts["tick"])  # a full garbage collection lands in some tick
    out["charts"], out["curves"], out["redrawn"] = charts, curves, statistics.median(redrawn)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refill", action="store_true", help="fill the cached index again")
    parser.add_argument("--rounds", type=int, default=15, help="ticks measured per case")
    args = parser.parse_args()
    root = CACHE / "project"
    marker = root / ".workbench" / "filled"
    if args.refill or not marker.exists():
        print(f"filling {root} (cached for the next runs) ...", flush=True)
        took = fill(root)
        marker.write_text(f"{took:.1f}\n")
        print(f"filling took {took:.1f} s")
    live = make_live(root)
    marked = live[:MARKED]
    asyncio.run(ticks(root, live, [], 2))  # warm-up: modules imported, caches filled
    cases = [("single chart (today)", []), ("3x3 overlay, 8 marked", marked)]
    results = {}
    for name, marks in cases:
        results[name] = asyncio.run(ticks(root, live, marks, args.rounds))
    for name, r in results.items():
        print(f"{name:<22} tick {r['tick']:6.1f} ms = reads {r['reads']:5.1f} + merge {r['merge']:5.1f} "
              f"+ repaint {r['repaint']:5.1f} (charts drawing {r['drawing']:5.1f}); "
              f"{r['charts']:.0f} chart(s) ({r['redrawn']:.0f} redrawn per tick), {r['curves']:.0f} curves; "
              f"main-thread CPU {r['cpu']:5.1f} ms; slowest tick {r['worst']:5.1f} ms; to screen {r['screen']:5.1f} ms "
              f"(waiting {r['wait']:4.1f} ms for Textual's frame)")
    base, overlay = results[cases[0][0]], results[cases[1][0]]
    print(f"overlay / single: {overlay['tick'] / base['tick']:.1f}x; goal: overlay tick <= 20 ms "
          f"with {LIVE} live runs")


if __name__ == "__main__":
    main()
