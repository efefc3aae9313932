"""Functions run in child processes by the concurrency tests (spawn needs them importable)."""

from __future__ import annotations

from typing import Any


def log_points(db_path: str, run_id: str, count: int, start: Any, results: Any) -> None:
    """Log ``count`` points of two keys with a fast-flushing writer; report any error."""
    from workbench.store import MetricWriter

    error = None
    try:
        writer = MetricWriter(db_path, run_id, flush_interval=0.002, heartbeat_interval=0.01)
        start.wait(30)
        for step in range(count):
            writer.log("loss", step * 0.5, step)
            writer.log("acc", -step, step)
            writer.progress(step, total=count)
        writer.close()
    except BaseException as exc:  # reported to the parent, which asserts there is none
        error = f"{type(exc).__name__}: {exc}"
    results.put((run_id, error))


def open_index(db_path: str, start: Any, results: Any) -> None:
    """Open (and so create and migrate) the index at the same moment as other processes."""
    from workbench.store import RunIndex

    error = None
    try:
        start.wait(30)
        with RunIndex(db_path) as index:
            index.create_run(task="race")
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    results.put(error)
