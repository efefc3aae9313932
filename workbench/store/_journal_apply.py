"""Applying journal records (``workbench.store.journal``) to the run index.

One call applies a batch of records in one ``BEGIN IMMEDIATE`` transaction, in journal
order: points are gathered per key and written together (as the direct writer writes
them) before any other record, progress records are merged until the next other record.

Applying the same records twice (an ingester that died after a commit and before it
saved its position) changes nothing: points are upserts by (run, key, step); an event
is keyed by its run, kind, message and the time the trainer recorded it, and is skipped
when already there; row and step updates replayed in order end where they ended; a
set-aside applied again sets aside this attempt's re-ingested points, which the records
after it write back, and its copies of them are dropped.
"""

from __future__ import annotations

import binascii
import json
import sqlite3
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any

from workbench.store import _rollup
from workbench.store._db import update_time
from workbench.store.errors import StoreError
from workbench.store.journal import unpack

__all__ = ["ApplyResult", "Hook", "add_event_once", "apply_records"]

#: Handles an operation the store does not know (``r``, the replay check, lives in runs):
#: called with (index, run_id, record) inside the transaction, after every record before it.
Hook = Callable[[Any, str, dict[str, Any]], None]


class ApplyResult:
    """Counts of one batch: records applied, points written, records refused (and why)."""

    def __init__(self) -> None:
        self.records = 0
        self.points = 0
        self.refused: list[str] = []


def add_event_once(conn: sqlite3.Connection, run_id: str, when: float, kind: str, message: str,
                   data: Any) -> bool:
    """Insert an event unless one with the same run, time, kind and message is there.

    Returns:
        Whether it was inserted.
    """
    found = conn.execute(
        "SELECT 1 FROM events WHERE run_id = ? AND time = ? AND kind = ? AND message = ? LIMIT 1",
        (run_id, when, kind, message),
    ).fetchone()
    if found:
        return False
    conn.execute(
        "INSERT INTO events (run_id, time, kind, message, data) VALUES (?, ?, ?, ?, ?)",
        (run_id, when, kind, message, None if data is None else json.dumps(data)),
    )
    return True


def apply_records(index: Any, run_id: str, records: Iterable[dict[str, Any]],
                  hooks: dict[str, Hook] | None = None) -> ApplyResult:
    """Apply journal records of ``run_id`` to ``index`` in one transaction.

    A record that cannot be applied (a field this index lacks, a step the run has not
    planned) is skipped and its reason kept in ``refused``; the others still apply.

    Args:
        index: The ``RunIndex``.
        run_id: The run the journal belongs to.
        records: Records as ``read_journal`` returns them.
        hooks: Handlers of further operations, by name.

    Returns:
        What was applied.
    """
    hooks = hooks or {}
    result = ApplyResult()
    points: dict[str, list[tuple]] = {}
    progress: list[Any] | None = None

    def write_points() -> None:
        if points:
            _rollup.write_points(index.connection, run_id, points)
            points.clear()

    def write_progress() -> None:
        nonlocal progress
        if progress is not None:
            step, total, epoch, beat = progress
            conn = index.connection
            if step is None:
                conn.execute("UPDATE runs SET heartbeat_at = ?, updated_at = ? WHERE id = ?",
                             (beat, update_time(conn), run_id))
            else:
                conn.execute(
                    "UPDATE runs SET step = ?, total_steps = coalesce(?, total_steps),"
                    " epoch = coalesce(?, epoch), heartbeat_at = ?, updated_at = ? WHERE id = ?",
                    (step, total, epoch, beat, update_time(conn), run_id))
            progress = None

    with index.write() as conn:
        for record in records:
            op = record.get("o")
            result.records += 1
            try:
                if op == "p":
                    key, attempt = str(record["k"]), int(record["a"])
                    steps, values, walls = unpack("q", record["s"]), unpack("d", record["v"]), unpack("d", record["w"])
                    if not len(steps) == len(values) == len(walls):
                        raise ValueError("a points record whose columns differ in length")
                    rows = list(zip(repeat(run_id), repeat(key), steps, values, walls, repeat(attempt)))
                    points.setdefault(key, []).extend(rows)
                    result.points += len(rows)
                    continue
                if op == "g":
                    step, total, epoch = record.get("s"), record.get("n"), record.get("e")
                    if progress is None or step is not None:
                        old = progress or [None, None, None, None]
                        progress = [step if step is not None else old[0],
                                    total if total is not None else old[1],
                                    epoch if epoch is not None else old[2], float(record["t"])]
                    else:
                        progress[3] = float(record["t"])
                    continue
                write_points()
                write_progress()
                conn.execute("SAVEPOINT journal_record")
                try:
                    _apply_one(index, conn, run_id, op, record, hooks)
                except (StoreError, sqlite3.Error, KeyError, TypeError, ValueError) as exc:
                    conn.execute("ROLLBACK TO journal_record")
                    result.refused.append(f"{op}: {exc}")
                finally:
                    conn.execute("RELEASE journal_record")
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                result.refused.append(f"{op}: {exc}")
        write_points()
        write_progress()
    return result


def _apply_one(index: Any, conn: sqlite3.Connection, run_id: str, op: Any, record: dict[str, Any],
               hooks: dict[str, Hook]) -> None:
    when = float(record["t"])
    if op == "e":
        add_event_once(conn, run_id, when, str(record["k"]), str(record.get("m") or ""), record.get("d"))
    elif op == "u":
        index.update_run(run_id, **record["f"])
    elif op == "x":
        step, attempt = int(record["s"]), int(record.get("a") or 0)
        index.set_aside_after(run_id, step)
        if attempt:  # applied again after a restart: this attempt's own points are not "aside"
            conn.execute("DELETE FROM metrics_aside WHERE run_id = ? AND attempt >= ?", (run_id, attempt))
    elif op == "f":
        index.add_artifacts(run_id, record["rows"])
    elif op == "sp":
        index.plan_steps(run_id, record["names"])
    elif op == "ss":
        index.start_step(run_id, str(record["name"]), int(record["a"]))
    elif op == "se":
        index.end_step(run_id, str(record["name"]), record["st"], record.get("err"))
    elif op in hooks:
        hooks[op](index, run_id, record)
    else:
        raise ValueError(f"unknown journal operation {op!r} (written by a newer workbench?)")
