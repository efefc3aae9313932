"""Helpers for the journal tests: an index with one run, a journal written through the
sink protocol, and what the index holds of a run (times and ids left out)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from workbench.store import RunIndex
from workbench.store.journal import JOURNAL_FILE, Journal, JournalIndex, JournalWriter

__all__ = ["content", "new_index", "write_two_attempts"]


def new_index(folder: Path) -> tuple[RunIndex, str, Path]:
    """An index file in ``folder`` with one run; returns (index, run id, run folder)."""
    index = RunIndex(folder / "index.db")
    run = index.create_run(task="t", config={})
    run_dir = folder / "runs" / run.id
    run_dir.mkdir(parents=True)
    return index, run.id, run_dir


def write_two_attempts(run_dir: Path, run_id: str, steps: int = 120) -> None:
    """A journal as a resumed run writes it: attempt 1 logs ``steps`` steps and fails;
    attempt 2 sets aside what came after step ``steps // 2``, logs it again (some values
    differ), and asks for the replay check. Every kind of record is in it."""
    half = steps // 2
    for attempt in (1, 2):
        journal = Journal(run_dir / JOURNAL_FILE, run_id)
        index = JournalIndex(journal, None, attempt=attempt)
        writer = JournalWriter(journal, attempt=attempt, flush_interval=0.01)
        index.update_run(run_id, status="running", pid=100 + attempt, host="node-1")
        index.add_event(run_id, "started", f"attempt {attempt}")
        if attempt == 1:
            index.plan_steps(run_id, ["fit", "test"])
        else:
            index.set_aside_after(run_id, half)
            index.add_event(run_id, "restored", f"from step {half}", {"step": half})
        index.start_step(run_id, "fit", attempt)
        first = 0 if attempt == 1 else half + 1
        for step in range(first, steps):
            writer.log("train/loss", 1.0 / (step + 1) + (0.5 if attempt == 2 and step % 7 == 0 else 0.0), step)
            if step < half:  # (not replayed: a NaN set aside and replayed is another story)
                writer.log("train/nan", math.nan, step)
            if step % 50 == 0:
                writer.progress(step, steps, 1)
                writer.flush()
                index.add_event(run_id, "checkpoint", f"step {step}", {"step": step})
                index.update_run(run_id)
        writer.close()
        if attempt == 1:
            index.end_step(run_id, "fit", "failed", "boom")
            index.update_run(run_id, status="failed", exit_code=1, error="boom", traceback="tb")
        else:
            index.end_step(run_id, "fit", "completed")
            index.add_artifacts(run_id, [{"path": "checkpoints/last.pt", "size": 12, "kind": "checkpoint"}])
            index.update_run(run_id, status="completed", exit_code=0, error=None, traceback=None)
            index.record_replay(run_id, attempt)
        index.close()


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def content(index: RunIndex, run_id: str, times: bool = False) -> dict[str, Any]:
    """What the index holds of a run: row fields that do not depend on when or where, every
    point, points set aside, events, steps and artifacts (``times``: with the times that
    the trainer recorded, i.e. event times and point wall times)."""
    row = index.get_run(run_id)
    assert row is not None
    conn = index.connection
    points = conn.execute("SELECT key, step, value, attempt" + (", wall_time" if times else "") +
                          " FROM metrics WHERE run_id = ? ORDER BY key, step", (run_id,)).fetchall()
    aside = conn.execute("SELECT key, step, value, attempt FROM metrics_aside WHERE run_id = ?"
                         " ORDER BY key, attempt, step", (run_id,)).fetchall()
    return {
        "row": {name: getattr(row, name) for name in ("status", "step", "total_steps", "epoch", "exit_code",
                                                       "error", "attempt")},
        "points": _plain([list(p) for p in points]),
        "aside": _plain([list(p) for p in aside]),
        "events": [(e.kind, e.message, _plain(e.data)) + ((e.time,) if times else ())
                   for e in index.events(run_id)],
        "steps": [(s.name, s.status.value, s.attempt, s.error) for s in index.run_steps(run_id)],
        "artifacts": [(a["path"], a["size"], a["kind"]) for a in index.artifacts(run_id)],
    }
