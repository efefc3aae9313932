"""What is left out of a snapshot, and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from snapshot_helpers import git, user_state, write

from workbench.snapshot import take_snapshot
from workbench.snapshot._guards import PathFilter


def files_of(repo: Path, commit: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "-z", "--name-only", commit).split("\0")) - {""}


def test_heavy_folders_big_files_and_patterns_are_left_out(repo: Path) -> None:
    state = repo / ".workbench"
    write(state / "index.db", "state")  # ignored by .gitignore here
    write(repo / "data" / "raw" / "a.csv")
    write(repo / "datasets" / "b.csv")
    write(repo / "checkpoints" / "last.pt")
    write(repo / "node_modules" / "left-pad" / "index.js")
    write(repo / ".venv" / "bin" / "python")
    write(repo / "tasks" / "__pycache__" / "train.cpython-311.pyc")
    write(repo / "wandb" / "run-1" / "log.txt")
    write(repo / "weights.ckpt")
    write(repo / "tasks" / "best.pt")
    write(repo / "tasks" / "OLD.PTH")
    write(repo / "results" / "metrics.json")
    write(repo / "results" / "keep.md")
    write(repo / "scratch" / "tmp.py")
    (repo / "big.bin").write_bytes(b"\0" * 2048)
    write(repo / "small.txt", "ok\n")
    write(repo / "newpkg" / "mod.py")
    write(repo / "newpkg" / "__pycache__" / "mod.pyc")
    write(repo / "newpkg" / "data" / "x.csv")
    write(repo / "newpkg" / "weights.pt")
    before = user_state(repo)

    snap = take_snapshot(
        repo,
        "g1",
        state_dir=state,
        max_file_bytes=1024,
        exclude=["results/*.json", "scratch/"],
    )

    assert user_state(repo) == before
    files = files_of(repo, snap.commit)
    tracked = {".gitignore", "README.md"} | {p for p in files if p.startswith("tasks/")}
    untracked_in = files - tracked
    assert untracked_in == {"results/keep.md", "small.txt", "newpkg/mod.py"}
    assert "tasks/best.pt" not in files
    excluded = dict(snap.excluded)
    assert excluded == {
        "data/": "heavy folder (data)",
        "datasets/": "heavy folder (datasets)",
        "checkpoints/": "heavy folder (checkpoints)",
        "node_modules/": "heavy folder (node_modules)",
        ".venv/": "heavy folder (.venv)",
        "tasks/__pycache__/": "heavy folder (__pycache__)",
        "wandb/": "heavy folder (wandb)",
        "weights.ckpt": "model weights file",
        "tasks/best.pt": "model weights file",
        "tasks/OLD.PTH": "model weights file",
        "results/metrics.json": "matches exclude pattern 'results/*.json'",
        "scratch/": "matches exclude pattern 'scratch/'",
        "big.bin": "larger than 1024 bytes",
        "newpkg/__pycache__/": "heavy folder (__pycache__)",
        "newpkg/data/": "heavy folder (data)",
        "newpkg/weights.pt": "model weights file",
    }


def test_state_dir_is_left_out_even_when_not_ignored(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root / "main.py", "print(1)\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "main.py")
    git(root, "commit", "-q", "-m", "c")
    write(root / "state" / "index.db", "db")
    write(root / "state" / "runs" / "r" / "run.toml", "x")
    snap = take_snapshot(root, None, state_dir=root / "state")
    assert files_of(root, snap.commit) == {"main.py"}
    assert dict(snap.excluded) == {"state/": "workbench state folder"}


def test_tracked_files_are_kept_however_big_or_heavy(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "table.bin").write_bytes(b"1" * 4096)
    write(repo / "model.pt", "weights")
    git(repo, "add", "data/table.bin", "model.pt")
    git(repo, "commit", "-q", "-m", "track them")
    (repo / "data" / "table.bin").write_bytes(b"2" * 4096)
    write(repo / "data" / "new.csv", "untracked")
    snap = take_snapshot(repo, None, state_dir=repo / ".workbench", max_file_bytes=100)
    files = files_of(repo, snap.commit)
    assert {"data/table.bin", "model.pt"} <= files
    assert "data/new.csv" not in files
    assert git(repo, "show", f"{snap.commit}:data/table.bin") == "2" * 4096
    assert dict(snap.excluded) == {"data/": "heavy folder (data)"}


def test_gitignored_heavy_folders_are_not_reported(repo: Path) -> None:
    write(repo / ".gitignore", "*.log\nbuild/\n.workbench/\n__pycache__/\n.venv/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore more")
    write(repo / ".venv" / "lib" / "x.py")
    write(repo / "pkg" / "a.py")
    write(repo / "pkg" / "__pycache__" / "a.pyc")
    snap = take_snapshot(repo, None, state_dir=repo / ".workbench")
    assert snap.excluded == ()
    assert "pkg/a.py" in files_of(repo, snap.commit)


def test_nested_repository_is_left_out(repo: Path) -> None:
    inner = repo / "vendor" / "lib"
    write(inner / "lib.py")
    git(inner, "init", "-q")
    write(repo / "other" / "clone" / "c.py")
    git(repo / "other" / "clone", "init", "-q")
    write(repo / "other" / "keep.py")
    snap = take_snapshot(repo, None, state_dir=repo / ".workbench")
    files = files_of(repo, snap.commit)
    assert "other/keep.py" in files
    assert not any(p.startswith(("vendor", "other/clone")) for p in files)
    assert dict(snap.excluded) == {
        "vendor/lib/": "nested git repository",
        "other/clone/": "nested git repository",
    }


@pytest.mark.parametrize(
    ("pattern", "path", "left_out"),
    [
        ("*.csv", "a/b/c.csv", "a/b/c.csv"),
        ("*.csv", "a/b.csvx", None),
        ("outputs", "outputs/x/y.txt", "outputs/"),
        ("outputs", "a/outputs", "a/outputs"),
        ("outputs/", "a/outputs", None),
        ("outputs/", "a/outputs/f", "a/outputs/"),
        ("/top.txt", "top.txt", "top.txt"),
        ("/top.txt", "a/top.txt", None),
        ("res/*.json", "res/m.json", "res/m.json"),
        ("res/*.json", "res/sub/m.json", None),
        ("res/**/*.json", "res/sub/deep/m.json", "res/sub/deep/m.json"),
        ("**/tmp", "x/y/tmp/f.py", "x/y/tmp/"),
        ("file?.txt", "file1.txt", "file1.txt"),
        ("file[0-9].txt", "fileA.txt", None),
        ("# comment", "# comment", None),
    ],
)
def test_exclude_patterns_follow_gitignore_rules(
    pattern: str, path: str, left_out: str | None
) -> None:
    hit = PathFilter([pattern]).check(path)
    assert (hit[0] if hit else None) == left_out


def test_anchored_patterns_are_relative_to_the_project_folder() -> None:
    path_filter = PathFilter(["results/*.json"], prefix="ml/proj")
    assert path_filter.check("ml/proj/results/a.json") is not None
    assert path_filter.check("results/a.json") is None
    assert path_filter.check("other/results/a.json") is None


def test_heavy_names_are_whole_names_only() -> None:
    path_filter = PathFilter()
    assert path_filter.check("data_utils/load.py") is None
    assert path_filter.check("mydata/x.py") is None
    assert path_filter.check("src/data/x.py") == ("src/data/", "heavy folder (data)")
    assert path_filter.check("notes.pt.txt") is None


def test_anchored_pattern_in_a_subfolder_project_prunes_only_there(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    write(top / "README.md")
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "c")
    project = top / "ml" / "proj"
    write(project / "out" / "new" / "a.txt")  # new folder: pruned by git itself
    write(project / "keep" / "out" / "b.txt")  # anchored: not this one
    write(top / "out" / "c.txt")  # outside the project: not this one
    snap = take_snapshot(project, None, state_dir=project / ".workbench", exclude=["/out/"])
    files = set(git(top, "ls-tree", "-r", "--name-only", snap.commit).split())
    assert files == {"README.md", "ml/proj/keep/out/b.txt", "out/c.txt"}
    assert dict(snap.excluded) == {"ml/proj/out/": "matches exclude pattern '/out/'"}
