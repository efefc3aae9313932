"""A run knows its data: ``[data]`` settings, the manifest and its digest, the hash cache,
and what launch, ``show``, ``compare`` and ``verify`` make of them (real files, a real git
project, runs made with ``launch(..., start=False)``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runs_helpers import git_env, invoke

from workbench.project import load_project
from workbench.project.errors import ProjectError
from workbench.runs import LaunchRequest, launch
from workbench.runs.compare import compare_runs
from workbench.runs.fingerprint import (
    DataFile,
    DataFingerprint,
    ManifestCache,
    changed_files,
    fingerprint_data,
    read_data_record,
)
from workbench.runs.verify import data_changes
from workbench.store import RunIndex

HOUR_AGO = time.time() - 3600


def write(path: Path, data: bytes, old: bool = True) -> Path:
    """Write a file; ``old``: its mtime an hour back (data not being written: cacheable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old:
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


def fp(root: Path, *paths: Path, below: int = 100, cache: ManifestCache | None = None) -> DataFingerprint:
    return fingerprint_data(list(paths), root=root, hash_below_bytes=below, cache=cache)


# -- the manifest and its digest -------------------------------------------------------------

def test_manifest_names_sizes_and_hashes(tmp_path: Path) -> None:
    root, outside = tmp_path / "project", tmp_path / "datasets" / "wiki"
    write(root / "data" / "a.txt", b"alpha")
    write(root / "data" / "sub" / "big.bin", b"x" * 500)
    write(outside / "train.txt", b"train")
    (root / "data" / "sub" / "up").symlink_to(root / "data")  # a loop is walked once

    got = fingerprint_data([root / "data", outside, root / "data" / "a.txt"], root=root, hash_below_bytes=100,
                           labels=["data/", "/datasets/wiki", "data/a.txt"])

    by_path = {f.path: f for f in got.files}
    assert sorted(by_path) == [f"{outside.as_posix()}/train.txt", "data/a.txt", "data/sub/big.bin"]
    assert by_path["data/a.txt"].size == 5 and len(by_path["data/a.txt"].hash or "") == 32
    assert by_path["data/sub/big.bin"].hash is None  # at or above the hashing size
    assert got.total_bytes == 510 and got.missing == () and got.hashed == 2
    assert got.summary == f"{got.digest[:12]} (3 files, 510 bytes) from data/, /datasets/wiki, data/a.txt"


def test_digest_follows_contents_when_hashed_and_mtime_when_not(tmp_path: Path) -> None:
    small = write(tmp_path / "data" / "small.txt", b"12345")
    big = write(tmp_path / "data" / "big.bin", b"y" * 200)
    first = fp(tmp_path, tmp_path / "data")

    os.utime(small, (HOUR_AGO + 60, HOUR_AGO + 60))  # touched, same contents
    assert fp(tmp_path, tmp_path / "data").digest == first.digest
    write(small, b"54321")  # same size and mtime, other contents
    changed = fp(tmp_path, tmp_path / "data")
    assert changed.digest != first.digest
    assert changed_files(first, changed) == ["data/small.txt"]

    write(small, b"12345")
    assert fp(tmp_path, tmp_path / "data").digest == first.digest  # back as it was
    os.utime(big, (HOUR_AGO + 60, HOUR_AGO + 60))  # too big to hash: known by its mtime
    touched = fp(tmp_path, tmp_path / "data")
    assert changed_files(first, touched) == ["data/big.bin"]


def test_changed_files_counts_added_and_removed_files(tmp_path: Path) -> None:
    write(tmp_path / "d" / "keep.txt", b"k")
    gone = write(tmp_path / "d" / "gone.txt", b"g")
    before = fp(tmp_path, tmp_path / "d")
    gone.unlink()
    write(tmp_path / "d" / "new.txt", b"n")
    assert changed_files(before, fp(tmp_path, tmp_path / "d")) == ["d/gone.txt", "d/new.txt"]


def test_a_missing_path_is_noted_not_refused(tmp_path: Path) -> None:
    write(tmp_path / "data" / "a.txt", b"a")
    got = fingerprint_data([tmp_path / "data", tmp_path / "nope"], root=tmp_path, hash_below_bytes=10,
                           labels=["data/", "nope/"])
    assert got.missing == (str(tmp_path / "nope"),)
    assert got.warnings == ["data path nope/ does not exist; the run's data fingerprint leaves it out"]
    assert len(got.files) == 1


# -- the cache -----------------------------------------------------------------------------

def test_a_warm_cache_reads_no_file_and_a_changed_one_is_read_again(tmp_path: Path) -> None:
    for i in range(20):
        write(tmp_path / "data" / f"{i}.txt", b"%03d" % i)
    cache_file = tmp_path / "state" / "cache" / "data-manifest.json"

    def cache() -> ManifestCache:
        return ManifestCache(cache_file, racy_ns=0)  # the files were just written

    cold = fp(tmp_path, tmp_path / "data", cache=cache())
    assert cold.hashed == 20 and len(json.loads(cache_file.read_text())["entries"]) == 20

    warm = fp(tmp_path, tmp_path / "data", cache=cache())
    assert warm.hashed == 0 and warm.digest == cold.digest

    path = write(tmp_path / "data" / "3.txt", b"999")
    os.utime(path, (HOUR_AGO + 5, HOUR_AGO + 5))  # same size, another mtime: a cache miss
    again = fp(tmp_path, tmp_path / "data", cache=cache())
    assert again.hashed == 1 and changed_files(cold, again) == ["data/3.txt"]

    time.sleep(0.05)  # past the filesystem's timestamp tick
    write(path, b"998")  # as tar or rsync -t would: same size, the old mtime set back
    os.utime(path, (HOUR_AGO + 5, HOUR_AGO + 5))
    restored = fp(tmp_path, tmp_path / "data", cache=cache())
    assert restored.hashed == 1 and changed_files(again, restored) == ["data/3.txt"]


def test_a_file_written_just_now_is_hashed_but_not_cached(tmp_path: Path) -> None:
    write(tmp_path / "data" / "fresh.txt", b"fresh", old=False)
    write(tmp_path / "data" / "restored.txt", b"old mtime, new ctime")  # as tar leaves it
    cache_file = tmp_path / "cache.json"
    fp(tmp_path, tmp_path / "data", cache=ManifestCache(cache_file))
    assert not cache_file.exists()  # nothing cacheable: nothing written
    assert fp(tmp_path, tmp_path / "data", cache=ManifestCache(cache_file)).hashed == 2


def test_a_damaged_cache_is_ignored_and_replaced(tmp_path: Path) -> None:
    write(tmp_path / "data" / "a.txt", b"a")
    cache_file = tmp_path / "cache.json"
    cache_file.write_text('{"version": 2, "algorithm": "blake2b-128", "entries": {')  # cut short
    assert fp(tmp_path, tmp_path / "data", cache=ManifestCache(cache_file, racy_ns=0)).hashed == 1
    assert list(json.loads(cache_file.read_text())["entries"]) == [str(tmp_path / "data" / "a.txt")]


_SAVER = """
import sys
from pathlib import Path
from workbench.runs.fingerprint import ManifestCache
path, who = Path(sys.argv[1]), sys.argv[2]
for round in range(15):
    cache = ManifestCache(path)
    for i in range(40):
        cache.store(f"/{who}/{round}/{i}", i, i, i, "h" * 32)
    cache.save()
"""


def test_concurrent_saves_leave_a_whole_cache_with_every_entry(tmp_path: Path) -> None:
    cache_file = tmp_path / "cache" / "data-manifest.json"
    procs = [subprocess.Popen([sys.executable, "-c", _SAVER, str(cache_file), f"p{n}"]) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    entries = json.loads(cache_file.read_text())["entries"]  # parses: never half-written
    assert len(entries) == 4 * 15 * 40  # merged under the lock: no launch lost another's
    assert not [p for p in cache_file.parent.iterdir() if p.suffix == ".tmp"]


_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=20)


@given(files=st.lists(st.tuples(_names, st.integers(0, 2**40), st.integers(0, 2**63 - 1),
                                st.none() | st.text("0123456789abcdef", min_size=32, max_size=32)), max_size=5),
       labels=st.lists(_names, max_size=3), seconds=st.floats(0, 1e6))
def test_a_fingerprint_reads_back_as_written(files, labels, seconds) -> None:
    manifest = tuple(DataFile(*f) for f in files)
    original = DataFingerprint(digest="ab" * 16, labels=tuple(labels), paths=tuple("/" + x for x in labels),
                               files=manifest, hash_below_bytes=8 << 20, missing=tuple(labels[:1]),
                               seconds=seconds, hashed=len(files))
    assert DataFingerprint.from_dict(json.loads(json.dumps(original.to_dict()))) == original


# -- settings -----------------------------------------------------------------------------

def test_data_settings_are_read_and_inner_paths_are_left_out_of_snapshots(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(
        '[snapshot]\nexclude = ["*.csv"]\n\n[data]\npaths = ["inputs/", "~/ds", "../shared", "odd[1]"]\n'
        "hash_below_mb = 0.5\n")
    project = load_project(tmp_path)
    assert project.data.paths == ("inputs/", "~/ds", "../shared", "odd[1]")
    assert project.data_paths == (tmp_path / "inputs", Path.home() / "ds", tmp_path.parent / "shared",
                                  tmp_path / "odd[1]")
    assert project.data.hash_below_bytes == 512 * 1024
    assert project.snapshot.exclude == ("*.csv", "/inputs", "/odd[[]1]")
    assert project.to_dict()["data"]["paths"] == ["inputs/", "~/ds", "../shared", "odd[1]"]

    (tmp_path / "workbench.toml").write_text("")
    assert load_project(tmp_path).data.paths == () and load_project(tmp_path).data.hash_below_bytes == 8 << 20


@pytest.mark.parametrize(("body", "expected"), [
    ('paths = ["."]', "workbench.toml:2: data.paths must not hold the project folder itself"),
    ('paths = [".."]', "workbench.toml:2: data.paths must not hold the project folder itself"),
    ("paths = [1]", "workbench.toml:2: data.paths must be a list of paths"),
    ('paths = [""]', "workbench.toml:2: data.paths must be a list of paths"),
    ("hash_below_mb = -1", "workbench.toml:2: data.hash_below_mb must be a number of MiB >= 0"),
    ("hash_below = 1", "workbench.toml:2: unknown key 'hash_below' in [data]"),
])
def test_bad_data_settings_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                        expected: str) -> None:
    monkeypatch.chdir(tmp_path)  # the file is named relative to the working folder
    (tmp_path / "workbench.toml").write_text(f"[data]\n{body}\n")
    with pytest.raises(ProjectError) as info:
        load_project(tmp_path)
    assert str(info.value).startswith(expected)


# -- launch, show, compare and verify ------------------------------------------------------------

def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, env=git_env(project.parent), check=True, capture_output=True)


@pytest.fixture
def data_project(project: Path) -> Path:
    """The quickstart project (git) declaring ``inputs/``, ``data/`` and a missing path,
    with untracked files in the first two."""
    with (project / "workbench.toml").open("a") as f:
        f.write('\n[data]\npaths = ["inputs/", "data/", "missing/"]\nhash_below_mb = 1\n')
    git(project, "commit", "-qam", "declare the data")
    write(project / "inputs" / "train.csv", b"x,y\n1,2\n")
    write(project / "data" / "weights.bin", b"w" * 4096)
    return project


def _launch(project: Path, name: str):
    with RunIndex(project / ".workbench" / "index.db") as index:
        return launch(load_project(project), LaunchRequest("SineRegression", ["epochs=1"], name=name),
                      index=index, start=False)


def test_launch_records_the_data_and_leaves_it_out_of_the_code(data_project: Path) -> None:
    run = _launch(data_project, "first")

    record = read_data_record(Path(run.run_dir))
    assert record is not None and [f.path for f in record.files] == ["data/weights.bin", "inputs/train.csv"]
    with RunIndex(data_project / ".workbench" / "index.db") as index:
        events = index.events(run.id)
    data = [e for e in events if e.kind == "data"]
    assert len(data) == 1 and data[0].data["digest"] == record.digest
    assert data[0].data["files"] == 2 and data[0].data["bytes"] == 4096 + 8
    assert any(e.kind == "warning" and "data path missing/ does not exist" in e.message for e in events)
    excluded = next(e for e in events if e.kind == "snapshot-excluded").data["files"]
    assert "inputs/ (a [data] path: fingerprinted, not snapshotted)" in excluded
    assert "data/ (a [data] path: fingerprinted, not snapshotted)" in excluded
    assert not (Path(run.run_dir) / "code" / "inputs").exists()
    # Only untracked data beside HEAD's code: the run's code is HEAD's, not "dirty".
    assert run.git_dirty is False

    shown = invoke(data_project, "show", run.id)
    assert shown.exit_code == 0, shown.output
    assert f"  data      {record.short} (2 files, 4.1 kB) from inputs/, data/, missing/" in shown.output
    assert "  snapshot  " in shown.output and "left out: " in shown.output and "inputs/ (a [data] path" in shown.output
    assert "uncommitted changes" not in shown.output

    (data_project / "tasks" / "sine.py").write_text((data_project / "tasks" / "sine.py").read_text() + "\n# edit\n")
    assert _launch(data_project, "edited").git_dirty is True  # a tracked change is dirty


def test_compare_and_verify_see_when_the_data_changed(data_project: Path) -> None:
    first, same = _launch(data_project, "first"), _launch(data_project, "same")
    write(data_project / "inputs" / "train.csv", b"x,y\n1,3\n")
    other = _launch(data_project, "other")

    with RunIndex(data_project / ".workbench" / "index.db") as index:
        comparison = compare_runs(index, [first, same, other])
    cells = comparison.data
    assert [c.same_data for c in cells] == [None, True, False] and comparison.data_differs
    assert cells[0].digest == read_data_record(Path(first.run_dir)).digest
    assert cells[2].text.endswith(" other data") and cells[1].text == cells[1].short

    state = data_project / ".workbench"
    assert data_changes(Path(other.run_dir), data_project, state) is None
    assert data_changes(Path(first.run_dir), data_project, state) == (
        "the data changed since the run: 1 file(s) differ (inputs/train.csv); "
        "a difference may come from the data, not the code")


def test_a_run_launched_without_data_paths_has_no_fingerprint(project: Path) -> None:
    run = _launch(project, "plain")
    assert read_data_record(Path(run.run_dir)) is None
    assert data_changes(Path(run.run_dir), project, project / ".workbench") is None
    assert "  data  " not in invoke(project, "show", run.id).output
