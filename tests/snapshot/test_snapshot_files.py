"""Writing a snapshot out, and diffing snapshots."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from snapshot_helpers import git, write

from workbench.snapshot import (
    SnapshotError,
    SnapshotRepo,
    checkout,
    diff,
    materialise,
    take_snapshot,
)


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_materialised_code_equals_the_snapshot_and_stays_put(repo: Path) -> None:
    write(repo / "tasks" / "train.py", "LR = 0.7\n")
    write(repo / "tasks" / "extra.py", "EXTRA = 1\n")
    script = write(repo / "tasks" / "run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    snap = take_snapshot(repo, "m1", state_dir=repo / ".workbench")
    code = repo / ".workbench" / "runs" / "m1" / "code"

    assert materialise(snap, snap.git_dir, code) == code

    listed = git(repo, "ls-tree", "-r", "-z", "--name-only", snap.commit).split("\0")
    expected = {p: git(repo, "show", f"{snap.commit}:{p}").encode() for p in listed if p}
    assert snapshot_files(code) == expected
    assert os.stat(code / "tasks" / "run.sh").st_mode & stat.S_IXUSR
    write(repo / "tasks" / "train.py", "LR = 99\n")
    (repo / "tasks" / "extra.py").unlink()
    assert snapshot_files(code) == expected
    assert not [p for p in code.parent.iterdir() if p.name.startswith(".code.")]


def test_materialise_refuses_a_folder_with_files(repo: Path) -> None:
    snap = take_snapshot(repo, None, state_dir=repo / ".workbench")
    dest = write(repo.parent / "out" / "keep.txt").parent
    with pytest.raises(SnapshotError, match="not empty"):
        materialise(snap, snap.git_dir, dest)
    assert snapshot_files(dest) == {"keep.txt": b"x\n"}
    empty = repo.parent / "empty"
    empty.mkdir()
    materialise(snap, snap.git_dir, empty)
    assert (empty / "tasks" / "train.py").is_file()


def test_checkout_by_run_id_and_unknown_names(repo: Path) -> None:
    write(repo / "tasks" / "train.py", "LR = 0.3\n")
    take_snapshot(repo, "c1", state_dir=repo / ".workbench")
    opened = SnapshotRepo.open(repo, repo / ".workbench")
    dest = opened.checkout("c1", repo.parent / "c1-code")
    assert (dest / "tasks" / "train.py").read_text() == "LR = 0.3\n"
    with pytest.raises(SnapshotError, match="no snapshot or commit named 'nope'"):
        opened.checkout("nope", repo.parent / "x")
    assert not (repo.parent / "x").exists()
    with pytest.raises(SnapshotError):
        checkout("0" * 40, opened.git_dir, repo.parent / "y")


def test_two_snapshots_diff_and_stat(repo: Path) -> None:
    state = repo / ".workbench"
    a = take_snapshot(repo, "a", state_dir=state)
    write(repo / "tasks" / "train.py", "LR = 0.01\n")
    write(repo / "tasks" / "added.py", "NEW = 1\n")
    b = take_snapshot(repo, "b", state_dir=state)

    patch = diff(repo, "a", "b", state_dir=state)
    assert "-LR = 0.1\n+LR = 0.01\n" in patch
    assert "+NEW = 1" in patch
    assert "\x1b[" not in patch
    assert diff(repo, a, b, state_dir=state) == patch  # Snapshots work as well as ids

    summary = diff(repo, "a", "b", state_dir=state, stat=True)
    assert "tasks/train.py | 2 +-" in summary
    assert "tasks/added.py | 1 +" in summary
    assert "2 files changed" in summary
    assert "\x1b[" in diff(repo, "a", "b", state_dir=state, color=True)
    assert diff(repo, "b", "b", state_dir=state) == ""


def test_diff_against_the_working_tree(repo: Path) -> None:
    state = repo / ".workbench"
    take_snapshot(repo, "w", state_dir=state)
    assert diff(repo, "w", state_dir=state) == ""
    write(repo / "tasks" / "model.py", "WIDTH = 64\n")
    write(repo / "notes.txt", "new file\n")
    write(repo / "data" / "huge.csv", "not code\n")
    patch = diff(repo, "w", state_dir=state)
    assert "+WIDTH = 64" in patch
    assert "+new file" in patch
    assert "huge.csv" not in patch
    assert git(repo, "for-each-ref", "refs/workbench").count("\n") == 1


def test_project_in_a_subfolder_snapshots_the_whole_repository(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    write(top / "shared" / "lib.py", "SHARED = 1\n")
    write(top / "ml" / "proj" / "tasks" / "t.py", "from shared import lib\n")
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "c")
    project = top / "ml" / "proj"
    write(top / "shared" / "lib.py", "SHARED = 2\n")
    write(project / "results" / "r.json", "{}")

    snap = take_snapshot(
        project, "sub", state_dir=project / ".workbench", exclude=["results/"]
    )

    assert snap.prefix == "ml/proj"
    assert snap.work_tree == top.resolve()
    assert git(top, "show", f"{snap.commit}:shared/lib.py") == "SHARED = 2\n"
    assert dict(snap.excluded) == {"ml/proj/results/": "matches exclude pattern 'results/'"}
    code = materialise(snap, snap.git_dir, tmp_path / "code")
    assert snapshot_files(code) == {"tasks/t.py": b"from shared import lib\n"}
    whole = materialise(snap, snap.git_dir, tmp_path / "whole", prefix="")
    assert (whole / "shared" / "lib.py").read_text() == "SHARED = 2\n"
    assert (whole / "ml" / "proj" / "tasks" / "t.py").is_file()


def test_diff_follows_the_projects_gitattributes(repo: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    state = repo / ".workbench"
    write(repo / ".gitattributes", "*.bin -diff\n")
    write(repo / "blob.bin", "one\n")
    a = take_snapshot(repo, "ga", state_dir=state)
    write(repo / "blob.bin", "two\n")
    b = take_snapshot(repo, "gb", state_dir=state)
    monkeypatch.chdir(tmp_path)  # wherever the app runs from
    for patch in (diff(repo, "ga", "gb", state_dir=state), diff(repo, a, b, state_dir=state)):
        assert "Binary files a/blob.bin and b/blob.bin differ" in patch
        assert "+two" not in patch
