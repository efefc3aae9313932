"""Ingesting a run's journal into the run index (the watcher's side of the journal sink).

:class:`JournalIngester` reads ``<run>/journal.jsonl`` from the byte position it saved in
``<run>/journal.pos``, applies the complete records in one transaction
(``workbench.store._journal_apply``), then saves the new position (a temporary file and a
rename). A watcher that dies between the commit and the save applies those records again
on restart, which changes nothing (see that module); none is ever skipped. The supervisor
of a run in journal mode runs one in a thread (:meth:`JournalIngester.start`) and drains
it (:meth:`JournalIngester.stop`) once the training process has exited.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from workbench.store import RunIndex
from workbench.store._journal_apply import add_event_once, apply_records
from workbench.store.journal import JOURNAL_FILE, read_journal

__all__ = ["POSITION_FILE", "JournalIngester", "read_position"]

#: Where the ingested byte position of the journal is kept, beside it.
POSITION_FILE = "journal.pos"


def read_position(run_dir: Path) -> int:
    """The byte position up to which the run's journal is in the index (0: none yet)."""
    try:
        value = json.loads((run_dir / POSITION_FILE).read_text(encoding="utf-8")).get("pos", 0)
        return value if isinstance(value, int) and value >= 0 else 0
    except (OSError, ValueError, AttributeError):
        return 0


def _replay_hook(index: Any, run_id: str, record: dict[str, Any]) -> None:
    """``r``: compare the attempt's replayed points (now in the index) with those set aside."""
    from workbench.runs.resume import compare_replay, replay_summary

    attempt = int(record["a"])
    if attempt < 2:
        return
    result = compare_replay(index, run_id, attempt) or {"matched": 0, "compared": 0, "first_divergence": None}
    add_event_once(index.connection, run_id, float(record["t"]), "replay", replay_summary(result), result)


class JournalIngester:
    """Applies a run's journal to the index, from where it last stopped.

    Args:
        index: The run index (an open ``RunIndex``, or its path: then the ingester opens
            and closes its own, as a thread must).
        run_dir: The run's folder (holds ``journal.jsonl`` and ``journal.pos``).
        run_id: The run.
        interval: Seconds between looks when running as a thread.
        max_bytes: Bytes read (and applied in one transaction) at most per batch.
    """

    def __init__(self, index: RunIndex | str | Path, run_dir: Path, run_id: str,
                 interval: float = 0.2, max_bytes: int = 8 << 20) -> None:
        self._index = index if isinstance(index, RunIndex) else None
        self._index_path = None if isinstance(index, RunIndex) else Path(index)
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.interval = interval
        self.max_bytes = max_bytes
        self.position = read_position(self.run_dir)
        self.bad_lines = 0
        self.refused: list[str] = []
        self.points = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    @property
    def journal(self) -> Path:
        """The journal file."""
        return self.run_dir / JOURNAL_FILE

    def ingest_once(self) -> int:
        """Apply the complete records written since the last call (one batch at most).

        Returns:
            How many records were applied (0: nothing new).
        """
        with self._lock:
            read = read_journal(self.journal, self.position, self.max_bytes)
            if read.end == self.position:
                return 0
            if read.header is not None and read.header.get("run") not in (None, self.run_id):
                raise ValueError(f"{self.journal} belongs to run {read.header.get('run')}, not {self.run_id}")
            index = self._open()
            result = apply_records(index, self.run_id, read.records, {"r": _replay_hook})
            self._save(read.end)
            self.bad_lines += read.bad
            self.points += result.points
            for reason in result.refused:
                self.refused.append(reason)
                print(f"journal of run {self.run_id}: record skipped: {reason}", file=sys.stderr, flush=True)
            return len(read.records)

    def drain(self) -> int:
        """Apply everything complete in the journal now. Returns the records applied."""
        total = 0
        while True:
            applied = self.ingest_once()
            if not applied and read_journal(self.journal, self.position, 1).end == self.position:
                return total
            total += applied

    def start(self) -> JournalIngester:
        """Ingest in a daemon thread every ``interval`` seconds until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name=f"workbench-ingest-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, then apply what is left (the training process has exited)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.drain()
        finally:
            self.close()

    def close(self) -> None:
        """Close the index the ingester opened itself."""
        if self._index is not None and self._index_path is not None:
            self._index.close()
            self._index = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                while self.ingest_once() and not self._stop.is_set():
                    pass  # a backlog: keep going without waiting
            except Exception as exc:  # noqa: BLE001 - retried at the next look; said once
                if self.error is None or str(self.error) != str(exc):
                    print(f"journal of run {self.run_id}: ingest failed (will retry): {exc}",
                          file=sys.stderr, flush=True)
                self.error = exc

    def _open(self) -> RunIndex:
        if self._index is None:
            assert self._index_path is not None
            self._index = RunIndex(self._index_path)
        return self._index

    def _save(self, position: int) -> None:
        path = self.run_dir / POSITION_FILE
        tmp = path.with_name(POSITION_FILE + ".tmp")
        tmp.write_text(json.dumps({"pos": position, "journal": JOURNAL_FILE}), encoding="utf-8")
        os.replace(tmp, path)
        self.position = position
