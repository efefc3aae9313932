"""The metric journal: what a training process records, appended to a file in its run folder.

A training process that must not write SQLite (a compute node whose run folder sits on a
network filesystem, or a local run launched with ``--sink journal``) records through the
same calls as the direct writer — :class:`JournalWriter` has ``MetricWriter``'s methods,
:class:`JournalIndex` the ``RunIndex`` methods that ``workbench.runs.train`` calls — and
everything lands, in call order, in ``<run>/journal.jsonl``. The run's supervisor ingests
the file into the index (``workbench.runs.ingest``).

Format (version :data:`JOURNAL_FORMAT`): UTF-8 JSON, one record per line, each an object
with an ``o`` (operation) field; the first line of a file is a header
``{"o": "h", "v": FORMAT, "run": RUN_ID}``. Points travel in batches, one line per key per
flush (``{"o": "p", "k": key, "a": attempt, "s": steps, "v": values, "w": times}``),
so a million points are a few hundred lines; their numbers are base64 of little-endian
64-bit arrays (``s``: ints, ``v`` and ``w``: floats), which is exact and costs the training
loop's thread (it shares the GIL with the writer's) far less than printing floats. A record is complete only with its newline:
a reader never consumes bytes after the last ``\\n`` (the writer may be mid-line), and a
line that does not parse (the torn end of a killed writer, terminated by the next
attempt's writer) is skipped and counted, never fatal. JSON keeps the file readable with
``tail -f``, resynchronises at every newline, and with a line per batch parses faster than
a framed binary format decoded in Python would.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from array import array
from base64 import b64decode, b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.store._metrics import TIME_KEYED_PREFIX
from workbench.store._runs import _encode_run_fields
from workbench.store._events import _check_artifact_path
from workbench.store.errors import InvalidValue, MetricWriterError, StoreError, UnknownField
from workbench.store.records import Run, RunStep, StepStatus
from workbench.store.writer import LogFunction, _clean, _closed_log, _make_log

__all__ = [
    "JOURNAL_FILE",
    "JOURNAL_FORMAT",
    "Journal",
    "JournalIndex",
    "JournalRead",
    "JournalWriter",
    "read_journal",
    "unpack",
]

#: The journal's name in the run folder.
JOURNAL_FILE = "journal.jsonl"
#: The format this code writes (and the newest it reads).
JOURNAL_FORMAT = 1

_EARLY_FLUSH = 8192  # points waiting that make the flusher write before its interval
_LOOK_INTERVAL = 0.02
_BIG_ENDIAN = sys.byteorder == "big"


def _pack(code: str, numbers: Sequence[Any]) -> str:
    """Numbers as base64 of little-endian 64-bit ``q`` ints or ``d`` floats (C speed, exact,
    NaN and infinities included: no float is ever printed)."""
    packed = array(code, numbers)
    if _BIG_ENDIAN:
        packed.byteswap()
    return b64encode(packed.tobytes()).decode("ascii")


def unpack(code: str, text: str) -> list[Any]:
    """The numbers :func:`_pack` packed."""
    packed = array(code)
    packed.frombytes(b64decode(text, validate=True))
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tolist()


def _dumps(record: Mapping[str, Any]) -> bytes:
    # allow_nan: a NaN or infinite loss is a value worth keeping (Python's json reads it back).
    return (json.dumps(record, separators=(",", ":"), allow_nan=True) + "\n").encode("utf-8")


class Journal:
    """The append-only file, shared by a run's :class:`JournalWriter` and :class:`JournalIndex`.

    Every write is one ``os.write`` of whole lines on an ``O_APPEND`` descriptor; a lock keeps
    records in call order. A file whose last line is torn (its writer was killed mid-line) is
    first terminated with a newline, so the torn fragment becomes one bad line and the next
    record starts clean.

    Args:
        path: The journal file (``<run>/journal.jsonl``); made if missing.
        run_id: The run it belongs to (written in the header of a new file).
        fsync: ``fsync`` after each background flush and on :meth:`sync` (what a reader on
            another machine of a network filesystem needs to see the bytes promptly).
    """

    def __init__(self, path: str | Path, run_id: str, fsync: bool = True) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.fsync = fsync
        self.lock = threading.RLock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._torn = False
        self._flush_points: Any = None  # set by a JournalWriter: drains its buffers first
        size = os.fstat(self._fd).st_size
        head = b""
        if size:
            with self.path.open("rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    head = b"\n"  # end a torn last record: it is skipped as one bad line
        else:
            head = _dumps({"o": "h", "v": JOURNAL_FORMAT, "run": run_id, "t": time.time()})
        if head:
            self.write(head)

    def write(self, data: bytes) -> None:
        """Append bytes (whole lines) at the end of the file."""
        with self.lock:
            if self._torn:  # an earlier write failed part-way: end its fragment first
                data = b"\n" + data
            view = memoryview(data)
            try:
                while view:  # a short write on a full disk or a signal: finish it or raise
                    written = os.write(self._fd, view)
                    view = view[written:]
            finally:
                self._torn = 0 < len(view) < len(data) or (self._torn and len(view) == len(data))

    def record(self, op: str, **fields: Any) -> None:
        """Append one record, after the points logged before it (call order is kept)."""
        line = _dumps({"o": op, "t": time.time(), **fields})
        with self.lock:
            if self._flush_points is not None:
                self._flush_points()
            self.write(line)

    def sync(self) -> None:
        """Make what was written durable (and visible to other hosts of a network filesystem)."""
        if self.fsync and self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the file (a second call does nothing)."""
        with self.lock:
            if self._fd >= 0:
                try:
                    self.sync()
                finally:
                    os.close(self._fd)
                    self._fd = -1


class JournalWriter:
    """``MetricWriter``'s interface over a journal: ``log()`` costs a ``list.append``.

    A daemon thread writes what piled up every ``flush_interval`` seconds (sooner when
    thousands of points wait): one line per key, plus a progress record that doubles as the
    heartbeat. Errors surface as ``MetricWriterError`` from :meth:`progress`, :meth:`flush`
    and :meth:`close`, as with the direct writer.

    Args:
        journal: The run's :class:`Journal`.
        attempt: The attempt stored with every point.
        flush_interval: Seconds between background writes (0.5 s at most keeps the ingest
            latency under a second).
        heartbeat_interval: A heartbeat is recorded at least this often.
    """

    def __init__(self, journal: Journal, attempt: int = 1, flush_interval: float = 0.25,
                 heartbeat_interval: float = 2.0) -> None:
        self.journal = journal
        self.run_id = journal.run_id
        self.attempt = attempt
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self._buffers: dict[str, list[tuple]] = {}
        self.log: LogFunction = _make_log(self._buffers, self.run_id, attempt)
        self._progress: tuple[int, int | None, int | None] | None = None
        self._written_progress: tuple[int, int | None, int | None] | None = None
        self._last_heartbeat = -float("inf")
        self._error: MetricWriterError | None = None
        self._retry: list[bytes] = []
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._requested = self._completed = 0
        self._stopping = self._closed = False
        journal._flush_points = self._write_points
        self._thread = threading.Thread(target=self._run, name=f"workbench-journal-{self.run_id}",
                                        daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    def log(self, key: str, value: float, step: int) -> None:  # type: ignore[no-redef]
        """Record one point; returns at once (replaced by a closure in ``__init__``)."""

    def add_artifacts(self, rows: list[dict[str, Any]]) -> None:
        """Record files of the run's folder (a logged image): an artifacts record, ingested
        in order with the points."""
        rows = [dict(row) for row in rows]
        for row in rows:
            unknown = sorted(set(row) - {"path", "size", "kind", "created_at"})
            if unknown:
                raise UnknownField(f"artifacts has no column {', '.join(unknown)}")
            _check_artifact_path(row["path"])
        self.journal.record("f", rows=rows)

    def progress(self, step: int, total: int | None = None, epoch: int | None = None) -> None:
        """Remember the run's progress; the next background write records it.

        Raises:
            MetricWriterError: A background write failed since the last check.
        """
        self._raise_error()
        self._progress = (step, total, epoch)

    def flush(self) -> None:
        """Write everything logged so far to the journal (and ``fsync`` it).

        Raises:
            MetricWriterError: A background write failed since the last check.
        """
        if not self._closed and threading.current_thread() is not self._thread:
            with self._done:
                self._requested += 1
                target = self._requested
            self._wake.set()
            with self._done:
                while self._completed < target and self._thread.is_alive():
                    self._done.wait(0.5)
        self._raise_error()

    def close(self) -> None:
        """Write what is left and stop the background thread (the journal stays open).

        Raises:
            MetricWriterError: A background write failed.
        """
        if self._closed:
            return
        atexit.unregister(self._at_exit)
        with self._done:
            self._stopping = True
            self._requested += 1
        self._wake.set()
        self._thread.join()
        self._closed = True
        self.log = _closed_log
        self.journal._flush_points = None
        self._raise_error()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        due = time.monotonic() + self.flush_interval
        while True:
            woken = self._wake.wait(min(self.flush_interval, _LOOK_INTERVAL))
            if not woken and time.monotonic() < due and self._pending() < _EARLY_FLUSH:
                continue
            due = time.monotonic() + self.flush_interval
            self._wake.clear()
            with self._done:
                target, stopping = self._requested, self._stopping
            try:
                with self.journal.lock:
                    self._write_points()
                    self._write_progress(final=stopping)
                self.journal.sync()
            except BaseException as exc:  # never let the thread die silently
                if self._error is None:
                    self._error = MetricWriterError(f"journal of run {self.run_id}: {exc}")
            with self._done:
                self._completed = target
                self._done.notify_all()
            if stopping:
                return

    def _pending(self) -> int:
        return sum(map(len, list(self._buffers.values())))

    def _write_points(self) -> None:
        """Append the waiting points, one line per key (called with the journal's lock)."""
        lines = []
        for key, buffer in list(self._buffers.items()):
            count = len(buffer)
            if not count:
                continue
            rows = buffer[:count]
            del buffer[:count]
            try:
                _, _, steps, values, walls, _ = zip(*rows)  # columns, at C speed (the GIL is shared)
                if (set(map(type, steps)) != {int} or not isinstance(key, str)
                        or min(steps) < -(2**63) or max(steps) >= 2**63):
                    raise TypeError("not (str key, int step within SQLite's 64-bit range)")
                line = _dumps({"o": "p", "k": key, "a": self.attempt, "s": _pack("q", steps),
                               "v": _pack("d", values), "w": _pack("d", walls)})
            except (TypeError, ValueError, OverflowError) as exc:
                good, bad = _clean(rows)
                line = _dumps({"o": "p", "k": str(key), "a": self.attempt, "s": _pack("q", [r[2] for r in good]),
                               "v": _pack("d", [r[3] for r in good]), "w": _pack("d", [r[4] for r in good])}
                              ) if good else b""
                if bad and self._error is None:
                    self._error = MetricWriterError(
                        f"dropped {bad} metric point(s) of run {self.run_id} that are not"
                        f" (str key, number value, int step within SQLite's 64-bit range): {exc}")
            if line:
                lines.append(line)
        if lines or self._retry:
            # What a failed write (disk full) left goes first; it is kept until written.
            self._retry.extend(lines)
            self.journal.write(b"".join(self._retry))
            self._retry.clear()

    def _write_progress(self, final: bool) -> None:
        progress = self._progress
        now = time.monotonic()
        beat = (progress != self._written_progress or now - self._last_heartbeat >= self.heartbeat_interval
                or (final and progress is not None))
        if not beat:
            return
        step, total, epoch = progress if progress is not None else (None, None, None)
        self.journal.write(_dumps({"o": "g", "t": time.time(), "s": step, "n": total, "e": epoch}))
        self._last_heartbeat = now
        self._written_progress = progress

    def _at_exit(self) -> None:
        try:
            self.close()
        except Exception as exc:  # noqa: BLE001 - at exit there is no caller left to raise to
            print(f"workbench: {exc}", file=sys.stderr)


class JournalIndex:
    """The ``RunIndex`` methods a training process calls, with every write journaled.

    Reads (the run's row, its earlier points and steps) go to ``reader``: the local index
    for a local run in journal mode, or None where the index cannot be reached (then the
    reads answer "nothing recorded"). What depends on this attempt's own points — the
    replay check — is not computed here but recorded (:meth:`record_replay`) for the
    ingester to compute once the points are in the index.

    Args:
        journal: The run's :class:`Journal`.
        reader: An open ``RunIndex`` for reads, or None.
        attempt: The attempt that writes (recorded with a set-aside).
    """

    def __init__(self, journal: Journal, reader: Any = None, attempt: int = 1) -> None:
        self.journal = journal
        self.reader = reader
        self.attempt = attempt

    # -- writes -------------------------------------------------------------------------

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Record a change of the run's row (checked now, applied at ingest)."""
        self._own(run_id)
        values = _encode_run_fields(fields)  # an unknown field fails here, not at ingest
        if "id" in values:
            raise InvalidValue("a run's id cannot change")
        self.journal.record("u", f=fields_for_json(fields))

    def add_event(self, run_id: str, kind: str, message: str = "", data: Any = None) -> int:
        """Record an event (its time is the time of this call). Returns 0: no id yet."""
        self._own(run_id)
        if not kind:
            raise InvalidValue("an event needs a kind")
        json.dumps(data)  # what cannot be encoded fails here
        self.journal.record("e", k=kind, m=message, d=data)
        return 0

    def set_aside_after(self, run_id: str, step: int) -> int:
        """Record that points after ``step`` are set aside; return how many the reader sees."""
        self._own(run_id)
        moved = 0
        if self.reader is not None:
            for key in self.reader.metric_keys(run_id):
                if key.startswith(TIME_KEYED_PREFIX):
                    continue  # system metrics are keyed by time and never set aside
                count, _, last = self.reader.step_span(run_id, key, 2**63 - 1)
                if last is not None and last > step:
                    moved += count - self.reader.step_span(run_id, key, step)[0]
        self.journal.record("x", s=int(step), a=int(self.attempt))
        return moved

    def record_replay(self, run_id: str, attempt: int) -> None:
        """Ask the ingester to compare the replayed points with those set aside, once
        everything before this record is in the index, and record a ``replay`` event."""
        self._own(run_id)
        self.journal.record("r", a=int(attempt))

    def add_artifacts(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Record files of the run's folder."""
        self._own(run_id)
        self.journal.record("f", rows=[dict(row) for row in rows])

    def plan_steps(self, run_id: str, names: Sequence[str]) -> list[RunStep]:
        """Record the run's plan; return the steps as recorded (the plan when none yet)."""
        self._own(run_id)
        names = [str(name) for name in names]
        if not names or len(set(names)) != len(names):
            raise InvalidValue(f"a pipeline needs one or more distinct steps, got {names}")
        self.journal.record("sp", names=names)
        recorded = self.run_steps(run_id)
        return recorded or [RunStep(run_id, i, name, StepStatus.PENDING, None, None, None, None)
                            for i, name in enumerate(names)]

    def start_step(self, run_id: str, name: str, attempt: int) -> None:
        """Record that step ``name`` starts in ``attempt``."""
        self._own(run_id)
        self.journal.record("ss", name=name, a=int(attempt))

    def end_step(self, run_id: str, name: str, status: StepStatus | str, error: str | None = None) -> None:
        """Record how step ``name`` ended."""
        self._own(run_id)
        self.journal.record("se", name=name, st=StepStatus(status).value, err=error)

    # -- reads --------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run | None:
        """The run's row as the index has it (None without a reader)."""
        return self.reader.get_run(run_id) if self.reader is not None else None

    def run_steps(self, run_id: str) -> list[RunStep]:
        """The run's steps as the index has them (empty without a reader)."""
        return self.reader.run_steps(run_id) if self.reader is not None else []

    def metric_keys(self, run_id: str) -> list[str]:
        """The run's metric keys in the index (empty without a reader)."""
        return self.reader.metric_keys(run_id) if self.reader is not None else []

    def step_span(self, run_id: str, key: str, upto: int) -> tuple[int, int | None, int | None]:
        """As ``RunIndex.step_span`` (nothing without a reader)."""
        return self.reader.step_span(run_id, key, upto) if self.reader is not None else (0, None, None)

    def close(self) -> None:
        """Close the reader and the journal."""
        try:
            if self.reader is not None:
                self.reader.close()
        finally:
            self.journal.close()

    def _own(self, run_id: str) -> None:
        if run_id != self.journal.run_id:
            raise StoreError(f"the journal of run {self.journal.run_id} cannot record run {run_id}")


def fields_for_json(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Run fields as JSON can carry them (a status as its name)."""
    out = {}
    for name, value in fields.items():
        out[name] = getattr(value, "value", value) if not isinstance(value, (int, float, str)) else value
    return out


@dataclass
class JournalRead:
    """What one read of a journal found.

    Attributes:
        records: The complete records, in order (the header left out).
        end: The byte position after the last complete line read.
        bad: Lines that did not parse (a torn record), skipped.
        header: The header, when the read started at 0.
    """

    records: list[dict[str, Any]]
    end: int
    bad: int
    header: dict[str, Any] | None = None


def read_journal(path: str | Path, start: int = 0, max_bytes: int = 16 << 20) -> JournalRead:
    """Read the complete records of a journal from byte ``start``.

    Bytes after the last newline are left for the next read (the writer may be mid-line).

    Args:
        path: The journal file.
        start: Where the previous read ended.
        max_bytes: Read at most about this much (a longer line is still read whole).

    Raises:
        StoreError: The journal is of a newer format.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(max_bytes)
            while data and not data.endswith(b"\n"):
                more = fh.read(max_bytes)
                if not more:
                    break
                data += more
                if b"\n" in more:
                    break
    except FileNotFoundError:
        return JournalRead([], start, 0)
    cut = data.rfind(b"\n") + 1
    records: list[dict[str, Any]] = []
    bad = 0
    header = None
    for line in data[:cut].splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("o"), str):
                raise ValueError("not a record")
        except (ValueError, UnicodeDecodeError):
            bad += 1
            continue
        if record["o"] == "h":
            if not isinstance(record.get("v"), int) or record["v"] > JOURNAL_FORMAT:
                raise StoreError(f"{path}: a journal of format {record.get('v')!r}, newer than this "
                                 f"workbench reads ({JOURNAL_FORMAT}); upgrade workbench")
            header = header or record
            continue
        records.append(record)
    return JournalRead(records, start + cut, bad, header)
