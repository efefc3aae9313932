"""MetricWriter: durable on flush and at exit, concurrent without locks errors, loud on failure."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.projects import poll

from workbench.store import MetricWriter, MetricWriterError, RunIndex

from . import _workers


def _count(db_path: Path, run_id: str) -> int:
    with RunIndex(db_path) as index:
        return index.connection.execute(
            "SELECT count(*) FROM metrics WHERE run_id = ?", (run_id,)
        ).fetchone()[0]


def test_flush_makes_every_logged_point_durable(index: RunIndex, db_path: Path) -> None:
    run_id = index.create_run(task="t").id
    with MetricWriter(db_path, run_id, flush_interval=3600) as writer:
        for step in range(1000):
            writer.log("loss", 1.0 / (step + 1), step)
        writer.log("loss", 42.0, 999)  # logged twice: the newer value wins
        writer.flush()
        # Another connection (another process, in life) sees all of it now.
        assert _count(db_path, run_id) == 1000
        assert index.last_metrics(run_id) == {"loss": 42.0}
    assert index.series(run_id, "loss", max_points=30)[-1] == (999, 42.0)


def test_progress_and_heartbeat_reach_the_run_row(index: RunIndex, db_path: Path) -> None:
    run_id = index.create_run(task="t", status="running").id
    with MetricWriter(db_path, run_id, flush_interval=3600) as writer:
        writer.progress(10, total=100, epoch=1)
        writer.flush()
        run = index.get_run(run_id)
        assert (run.step, run.total_steps, run.epoch) == (10, 100, 1)
        first_beat = run.heartbeat_at
        assert first_beat is not None
        writer.progress(11)  # total and epoch stay as they were
        writer.flush()
        run = index.get_run(run_id)
        assert (run.step, run.total_steps, run.epoch) == (11, 100, 1)
        assert run.heartbeat_at >= first_beat


def test_heartbeat_keeps_coming_when_nothing_changes(index: RunIndex, db_path: Path) -> None:
    run_id = index.create_run(task="t", status="running").id
    beats: set[float] = set()

    def two_beats() -> bool:
        beat = index.get_run(run_id).heartbeat_at
        if beat is not None:
            beats.add(beat)
        return len(beats) >= 2

    with MetricWriter(db_path, run_id, flush_interval=0.01, heartbeat_interval=0.05):
        poll(two_beats, "a second heartbeat with nothing logged", timeout=30, every=0.02)


@pytest.mark.parametrize(
    "ending",
    ["pass", "import sys; sys.exit(3)", "raise RuntimeError('the loop crashed')"],
    ids=["normal", "sys.exit", "uncaught-exception"],
)
def test_points_logged_without_close_are_written_at_exit(index: RunIndex, db_path: Path, ending: str) -> None:
    run_id = index.create_run(task="t").id
    script = textwrap.dedent(f"""
        from workbench.store import MetricWriter
        writer = MetricWriter({str(db_path)!r}, {run_id!r}, flush_interval=3600)
        for step in range(2500):
            writer.log("loss", step, step)
        {ending}
    """)
    subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert _count(db_path, run_id) == 2500


def test_sixteen_writer_processes_lose_nothing_and_never_see_locked(index: RunIndex, db_path: Path) -> None:
    count, processes = 400, 16
    run_ids = [index.create_run(task="t", status="running").id for _ in range(processes)]
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_workers.log_points, args=(str(db_path), run_id, count, start, results))
        for run_id in run_ids
    ]
    for worker in workers:
        worker.start()
    start.set()
    reads = 0
    outcome: list[tuple[str, str | None]] = []

    def all_reported() -> bool:  # read while they write: WAL readers never wait
        nonlocal reads
        for run_id in run_ids[:2]:
            index.metrics_after(run_id, -1)
            reads += 1
        while not results.empty():
            outcome.append(results.get())
        silent = [w.pid for w in workers if not w.is_alive() and w.exitcode != 0]
        assert not silent, f"writer processes {silent} died without reporting"
        return len(outcome) == processes

    try:
        poll(all_reported, f"{processes} writer processes to report", timeout=240, every=0.01)
    except BaseException:
        for worker in workers:
            worker.kill()
        raise
    for worker in workers:
        worker.join(30)
    assert [error for _, error in outcome if error] == []
    for run_id in run_ids:
        assert _count(db_path, run_id) == 2 * count
        assert index.get_run(run_id).step == count - 1
    assert reads > 0


def test_unwritable_points_are_dropped_and_reported_on_close(index: RunIndex, db_path: Path) -> None:
    run_id = index.create_run(task="t").id
    writer = MetricWriter(db_path, run_id, flush_interval=0.01)
    writer.log("loss", 1.0, 0)
    writer.log("loss", 2.0, object())  # not a step: the background write fails
    writer.log("loss", 3.0, 2.0)  # an integral float is accepted as step 2
    # The background write has taken the bad point and failed once the good points around it
    # are in the index; the training loop's next log() never sees that error ...
    poll(lambda: [(s, v) for s, v, _ in index.points(run_id, "loss")] == [(0, 1.0), (2, 3.0)],
         "the batch with the bad point to be written", timeout=30, every=0.01)
    writer.log("loss", 4.0, 3)
    with pytest.raises(MetricWriterError, match="dropped 1 metric point"):
        writer.close()  # ... until it closes (or flushes)
    assert [(s, v) for s, v, _ in index.points(run_id, "loss")] == [(0, 1.0), (2, 3.0), (3, 4.0)]
    writer.close()  # idempotent, and the error was reported once


def test_database_errors_surface_on_flush_and_close(index: RunIndex, db_path: Path) -> None:
    run_id = index.create_run(task="t").id
    writer = MetricWriter(db_path, run_id, flush_interval=3600)
    with index.write() as conn:
        conn.execute("DROP TABLE metrics")
    writer.log("loss", 1.0, 0)
    with pytest.raises(MetricWriterError, match="no such table"):
        writer.flush()
    with pytest.raises(MetricWriterError, match="no such table"):
        writer.close()
    assert not writer._thread.is_alive()


def test_log_after_close_is_an_error(index: RunIndex, db_path: Path) -> None:
    writer = MetricWriter(db_path, index.create_run(task="t").id)
    writer.close()
    with pytest.raises(MetricWriterError, match="closed"):
        writer.log("loss", 1.0, 0)


def test_a_lock_held_past_the_busy_timeout_is_retried_without_loss(
    index: RunIndex, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workbench.store._db as db

    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.05)
    run_id = index.create_run(task="t").id
    writer = MetricWriter(db_path, run_id, flush_interval=3600)
    blocker = db.connect(db_path)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    writer.log("loss", 1.0, 0)
    with pytest.raises(MetricWriterError, match="will retry"):
        writer.flush()
    blocker.execute("ROLLBACK")
    writer.log("loss", 2.0, 1)
    writer.flush()  # the held-back points go out with the new ones; nothing to report
    writer.close()
    assert [(s, v) for s, v, _ in index.points(run_id, "loss")] == [(0, 1.0), (1, 2.0)]
