"""The journal sink: a writer killed mid-record, an ingester restarted anywhere, and what
the journal carries read back as written. Real files, a real SQLite index, no mocks."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journal_helpers import content, new_index, write_two_attempts

from workbench.runs.ingest import POSITION_FILE, JournalIngester, read_position
from workbench.store import MetricWriterError, StoreError
from workbench.store.journal import JOURNAL_FILE, Journal, JournalIndex, JournalWriter, read_journal, unpack

#: Writes 200 points and an event through the journal, flushes, then starts a big record
#: with a short write and SIGKILLs itself before finishing it.
KILLED_WRITER = r'''
import os, signal, sys
from workbench.store.journal import Journal, JournalIndex, JournalWriter
journal = Journal(sys.argv[1], sys.argv[2])
index, writer = JournalIndex(journal), JournalWriter(journal)
for step in range(200):
    writer.log("loss", step / 10, step)
writer.flush()
index.add_event(sys.argv[2], "checkpoint", "step 199", {"step": 199})
index.update_run(sys.argv[2], step=199)
line = ('{"o":"e","t":1.0,"k":"never","m":"' + "x" * 100000 + '"}\n').encode()
os.write(journal._fd, line[: len(line) // 2])
os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_writer_killed_in_the_middle_of_a_record(tmp_path: Path) -> None:
    index, run_id, run_dir = new_index(tmp_path)
    journal = run_dir / JOURNAL_FILE
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(journal), run_id], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not journal.read_bytes().endswith(b"\n")  # it really died mid-record

    ingester = JournalIngester(index, run_dir, run_id)
    ingester.drain()
    assert [p[0] for p in index.points(run_id, "loss")] == list(range(200))
    assert [(e.kind, e.data) for e in index.events(run_id)] == [("checkpoint", {"step": 199})]
    assert index.get_run(run_id).step == 199
    assert read_position(run_dir) < journal.stat().st_size  # the torn tail is not consumed

    # The next attempt's writer ends the torn line; the fragment is one skipped line, and
    # everything the new attempt writes is ingested.
    with JournalWriter(Journal(journal, run_id), attempt=2) as writer:
        writer.log("loss", -1.0, 200)
    ingester.drain()
    assert ingester.bad_lines == 1 and ingester.refused == []
    assert index.points(run_id, "loss")[-1][:2] == (200, -1.0)
    assert [e.kind for e in index.events(run_id)] == ["checkpoint"]


def test_a_journal_cut_at_every_byte_of_its_last_records_ingests_what_precedes(tmp_path: Path) -> None:
    source, run_id, run_dir = new_index(tmp_path / "source")
    journal = Journal(run_dir / JOURNAL_FILE, run_id)
    index, writer = JournalIndex(journal), JournalWriter(journal)
    for step in range(5):
        writer.log("loss", float(step), step)
    writer.flush()
    index.add_event(run_id, "one", "first")
    index.add_event(run_id, "two", "second", {"n": 2})
    writer.close()
    index.close()
    data = (run_dir / JOURNAL_FILE).read_bytes()
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    for cut in range(ends[-3] - 3, len(data) + 1):
        target, _, target_dir = new_index(tmp_path / f"cut{cut}")
        target.connection.execute("UPDATE runs SET id = ? ", (run_id,))
        (target_dir.parent / run_id).mkdir()
        (target_dir.parent / run_id / JOURNAL_FILE).write_bytes(data[:cut])
        JournalIngester(target, target_dir.parent / run_id, run_id).drain()
        complete = data[:max(e for e in [0, *ends] if e <= cut)]
        kinds = [e.kind for e in target.events(run_id)]
        assert kinds == [k for k in ("one", "two") if f'"k":"{k}"'.encode() in complete], cut
        assert len(target.points(run_id, "loss")) == (5 if b'"o":"p"' in complete else 0)
        target.close()
        shutil.rmtree(tmp_path / f"cut{cut}")


@pytest.mark.parametrize("seed", range(3))
def test_an_ingester_restarted_anywhere_neither_loses_nor_duplicates(tmp_path: Path, seed: int) -> None:
    reference, run_id, run_dir = new_index(tmp_path / "reference")
    write_two_attempts(run_dir, run_id)
    JournalIngester(reference, run_dir, run_id).drain()
    expected = content(reference, run_id, times=True)
    assert expected["aside"] and any(kind == "replay" for kind, *_ in expected["events"])

    index, other_id, other_dir = new_index(tmp_path / "restarted")
    index.connection.execute("UPDATE runs SET id = ?", (run_id,))
    shutil.copy(run_dir / JOURNAL_FILE, other_dir / JOURNAL_FILE)
    rng = random.Random(seed)
    size = (other_dir / JOURNAL_FILE).stat().st_size
    restarts = 0
    while read_position(other_dir) < size:
        # A new watcher each time, reading a random amount; it dies either cleanly or after
        # its commit but before saving its position (the position file keeps the old one).
        ingester = JournalIngester(index, other_dir, run_id, max_bytes=rng.randint(1, 600))
        before = (other_dir / POSITION_FILE).read_bytes() if (other_dir / POSITION_FILE).exists() else None
        ingester.ingest_once()
        if rng.random() < 0.5:
            restarts += 1
            if before is None:
                (other_dir / POSITION_FILE).unlink()
            else:
                (other_dir / POSITION_FILE).write_bytes(before)
            ingester.ingest_once() if rng.random() < 0.3 else None
    assert restarts >= 3
    assert content(index, run_id, times=True) == expected


def test_the_replay_check_and_set_aside_land_as_a_direct_run_writes_them(tmp_path: Path) -> None:
    index, run_id, run_dir = new_index(tmp_path)
    write_two_attempts(run_dir, run_id, steps=100)
    JournalIngester(index, run_dir, run_id).drain()
    got = content(index, run_id)
    replay = [data for kind, _, data in got["events"] if kind == "replay"]
    assert replay == [{"matched": 42, "compared": 49,
                       "first_divergence": {"key": "train/loss", "step": 56,
                                            "before": 1 / 57, "replayed": 1 / 57 + 0.5}}]
    assert got["row"]["status"] == "completed" and got["row"]["exit_code"] == 0
    assert got["steps"] == [("fit", "completed", 2, None), ("test", "pending", None, None)]
    assert {a for _, _, _, a in got["aside"]} == {1}
    assert got["artifacts"] == [("checkpoints/last.pt", 12, "checkpoint")]


def test_a_record_the_index_refuses_is_skipped_with_its_reason(tmp_path: Path) -> None:
    index, run_id, run_dir = new_index(tmp_path)
    journal = Journal(run_dir / JOURNAL_FILE, run_id)
    sink = JournalIndex(journal)
    sink.start_step(run_id, "fit", 1)  # no plan: the index refuses it
    sink.add_event(run_id, "after", "still applied")
    with (run_dir / JOURNAL_FILE).open("a") as fh:
        fh.write('{"o":"zz","t":1}\n')
    sink.close()
    ingester = JournalIngester(index, run_dir, run_id)
    ingester.drain()
    assert [e.kind for e in index.events(run_id)] == ["after"]
    assert len(ingester.refused) == 2 and "no step 'fit'" in ingester.refused[0]


def test_bad_calls_fail_in_the_trainer_not_at_ingest(tmp_path: Path) -> None:
    _, run_id, run_dir = new_index(tmp_path)
    sink = JournalIndex(Journal(run_dir / JOURNAL_FILE, run_id))
    with pytest.raises(StoreError, match="no column"):
        sink.update_run(run_id, colour="red")
    with pytest.raises(StoreError, match="cannot record run other"):
        sink.add_event("other", "x")
    with pytest.raises(TypeError):
        sink.add_event(run_id, "x", "", {"bad": object()})
    writer = JournalWriter(sink.journal)
    writer.log("loss", 1.0, "one")  # type: ignore[arg-type]
    writer.log("loss", 2.0, 2)
    with pytest.raises(MetricWriterError, match="dropped 1 metric point"):
        writer.flush()
    writer.close()
    with pytest.raises(MetricWriterError, match="closed"):
        writer.log("loss", 1.0, 3)
    records = read_journal(run_dir / JOURNAL_FILE).records
    assert [unpack("q", r["s"]) for r in records if r["o"] == "p"] == [[2]]


def test_a_newer_journal_format_is_refused_in_one_line(tmp_path: Path) -> None:
    index, run_id, run_dir = new_index(tmp_path)
    (run_dir / JOURNAL_FILE).write_text(json.dumps({"o": "h", "v": 99, "run": run_id}) + "\n")
    with pytest.raises(StoreError, match="format 99, newer than this workbench reads"):
        JournalIngester(index, run_dir, run_id).drain()


_keys = st.text(min_size=1, max_size=12)
_values = st.floats(allow_nan=True, allow_infinity=True)
_steps = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=40, deadline=None)
@given(points=st.lists(st.tuples(_keys, _values, _steps), max_size=40),
       events=st.lists(st.tuples(st.text(min_size=1), st.text(),
                                 st.dictionaries(st.text(), st.integers() | st.text() | st.booleans())),
                       max_size=5))
def test_what_is_journaled_reads_back_as_written(tmp_path_factory: pytest.TempPathFactory,
                                                 points: list, events: list) -> None:
    folder = tmp_path_factory.mktemp("prop")
    journal = Journal(folder / JOURNAL_FILE, "r1")
    sink, writer = JournalIndex(journal), JournalWriter(journal)
    for key, value, step in points:
        writer.log(key, value, step)
    writer.flush()
    for kind, message, data in events:
        sink.add_event("r1", kind, message, data)
    writer.close()
    sink.close()
    read = read_journal(folder / JOURNAL_FILE)
    assert read.bad == 0 and read.header["run"] == "r1"
    got = [(r["k"], v, s) for r in read.records if r["o"] == "p"
           for s, v in zip(unpack("q", r["s"]), unpack("d", r["v"]))]
    want: dict = {}
    for key, value, step in points:
        want.setdefault(key, []).append((key, value, step))
    flat = [p for key in want for p in want[key]]
    assert [(k, "nan" if math.isnan(v) else v, s) for k, v, s in got] == \
        [(k, "nan" if math.isnan(v) else v, s) for k, v, s in flat]
    assert [(r["k"], r["m"], r["d"]) for r in read.records if r["o"] == "e"] == events
    os.remove(folder / JOURNAL_FILE)
