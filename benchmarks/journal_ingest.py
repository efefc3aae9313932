"""The journal sink against the direct writer, measured in the same run.

1. ``log()`` call cost: ``JournalWriter.log`` vs ``MetricWriter.log`` (goal: the same).
2. Ingest rate: 1M points (4 keys) logged through a ``JournalWriter`` and closed, then
   ingested by a ``JournalIngester`` from a cold start; against a ``MetricWriter`` logging
   the same points into a fresh index and closed (time to durable). Goal: ingest >= 50 %
   of the direct rate. Shown also: the journal's write time and size.
3. Latency from ``log()`` to the index: a writer logs a point every 10 ms while an
   ingester thread (0.2 s, as in a supervisor) applies; a reader polls the index every
   5 ms and notes when each point appears. Median and 95th percentile (goal: median <= 1 s).

No asserts: these machines are shared and noisy; compare the ratios, not the figures.

Run: ``.venv/bin/python benchmarks/journal_ingest.py [POINTS]``
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from workbench.runs.ingest import JournalIngester
from workbench.store import MetricWriter, RunIndex
from workbench.store.journal import JOURNAL_FILE, Journal, JournalWriter

KEYS = ("train/loss", "train/acc", "lr", "grad_norm")
CALLS = 200_000


def _run(folder: Path, name: str) -> tuple[Path, str, Path]:
    db = folder / name / "index.db"
    with RunIndex(db) as index:
        run_id = index.create_run(task="bench", config={}).id
    run_dir = folder / name / "run"
    run_dir.mkdir()
    return db, run_id, run_dir


def _log_all(log, points: int) -> None:
    for step in range(points // len(KEYS)):
        value = step * 0.001
        for key in KEYS:
            log(key, value, step)


def call_cost(folder: Path) -> tuple[float, float]:
    """Nanoseconds per ``log()`` call: (journal, direct), best of 3 alternating rounds."""
    best = {"journal": float("inf"), "direct": float("inf")}
    for round_ in range(3):
        for kind in ("journal", "direct"):
            db, run_id, run_dir = _run(folder, f"cost-{kind}-{round_}")
            if kind == "journal":
                writer = JournalWriter(Journal(run_dir / JOURNAL_FILE, run_id))
            else:
                writer = MetricWriter(db, run_id)
            log = writer.log
            start = time.perf_counter()
            _log_all(log, CALLS)
            best[kind] = min(best[kind], (time.perf_counter() - start) / CALLS * 1e9)
            writer.close()
    return best["journal"], best["direct"]


def ingest_rate(folder: Path, points: int) -> dict[str, float]:
    """Points per second: direct writer to durable, journal write, journal ingest."""
    db, run_id, _ = _run(folder, "direct")
    start = time.perf_counter()
    writer = MetricWriter(db, run_id)
    _log_all(writer.log, points)
    writer.close()
    direct = time.perf_counter() - start

    db, run_id, run_dir = _run(folder, "journal")
    start = time.perf_counter()
    journal = Journal(run_dir / JOURNAL_FILE, run_id)
    jwriter = JournalWriter(journal)
    _log_all(jwriter.log, points)
    jwriter.close()
    journal.close()
    written = time.perf_counter() - start

    start = time.perf_counter()
    ingester = JournalIngester(db, run_dir, run_id)
    ingester.drain()
    ingester.close()
    ingest = time.perf_counter() - start
    with RunIndex(db) as index:
        stored = sum(len(index.points(run_id, key)) for key in KEYS)
    assert stored == points // len(KEYS) * len(KEYS), stored
    return {"direct": points / direct, "journal_write": points / written, "ingest": points / ingest,
            "bytes": (run_dir / JOURNAL_FILE).stat().st_size}


def latency(folder: Path, count: int = 300) -> list[float]:
    """Seconds from ``log()`` to the point being readable in the index, per point."""
    db, run_id, run_dir = _run(folder, "latency")
    journal = Journal(run_dir / JOURNAL_FILE, run_id)
    writer = JournalWriter(journal)
    ingester = JournalIngester(db, run_dir, run_id).start()
    logged: dict[int, float] = {}
    seen: dict[int, float] = {}
    done = threading.Event()

    def read() -> None:
        with RunIndex(db) as index:
            last = -1
            while not done.is_set() or last < count - 1:
                row = index.connection.execute(
                    "SELECT max(step) FROM metrics WHERE run_id = ? AND key = 'x'", (run_id,)).fetchone()
                now = time.time()
                if row[0] is not None and row[0] > last:
                    for step in range(last + 1, row[0] + 1):
                        seen[step] = now
                    last = row[0]
                time.sleep(0.005)

    reader = threading.Thread(target=read)
    reader.start()
    for step in range(count):
        logged[step] = time.time()
        writer.log("x", float(step), step)
        time.sleep(0.01)
    writer.close()
    done.set()
    reader.join(timeout=30)
    ingester.stop()
    journal.close()
    return [seen[s] - logged[s] for s in range(count) if s in seen]


def main() -> None:
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    folder = Path(tempfile.mkdtemp(prefix="wb-journal-bench-"))
    try:
        journal_ns, direct_ns = call_cost(folder)
        print(f"log() call: journal {journal_ns:.0f} ns, direct {direct_ns:.0f} ns; "
              f"journal/direct {journal_ns / direct_ns:.2f}")
        rates = ingest_rate(folder, points)
        print(f"{points:,} points: direct writer {rates['direct']:,.0f} points/s to durable; journal written at "
              f"{rates['journal_write']:,.0f} points/s ({rates['bytes'] / 1e6:.1f} MB); ingested at "
              f"{rates['ingest']:,.0f} points/s; ingest/direct {rates['ingest'] / rates['direct']:.2f} (goal >= 0.5)")
        delays = sorted(latency(folder))
        print(f"log() -> index latency over {len(delays)} points: median {statistics.median(delays) * 1000:.0f} ms, "
              f"p95 {delays[int(len(delays) * 0.95)] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms "
              f"(goal: median <= 1000 ms; flush 0.25 s + ingest every 0.2 s)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
