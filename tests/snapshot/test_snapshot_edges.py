"""Unusual repositories: none, empty, detached, odd names, submodules, no git."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from snapshot_helpers import git, user_state, write

from workbench.snapshot import (
    SnapshotError,
    SnapshotRepo,
    delete_ref,
    diff,
    gc,
    list_refs,
    materialise,
    take_snapshot,
)


def files_of(cwd: Path, commit: str, *git_args: str) -> set[str]:
    out = git(cwd, *git_args, "ls-tree", "-r", "-z", "--name-only", commit)
    return set(out.split("\0")) - {""}


def test_folder_outside_git_gets_a_private_repository(tmp_path: Path) -> None:
    project = tmp_path / "plain"
    write(project / "tasks" / "t.py", "A = 1\n")
    write(project / "venv" / "lib.py")
    state = project / ".workbench"
    write(state / "index.db", "db")
    assert SnapshotRepo.open(project, state).list_refs() == {}

    first = take_snapshot(project, "p1", state_dir=state)

    assert first.private is True
    assert first.head is None and first.branch is None
    assert first.git_dir == (state / "git").resolve()
    assert not (project / ".git").exists()
    gd = f"--git-dir={state / 'git'}"
    assert files_of(project, first.commit, gd) == {"tasks/t.py"}
    assert dict(first.excluded) == {"venv/": "heavy folder (venv)"}
    assert git(project, gd, "rev-list", "--parents", "-n1", first.commit).split() == [first.commit]

    write(project / "tasks" / "t.py", "A = 2\n")
    write(project / "tasks" / "u.py", "B = 1\n")
    second = take_snapshot(project, "p2", state_dir=state)
    assert files_of(project, second.commit, gd) == {"tasks/t.py", "tasks/u.py"}
    (project / "tasks" / "u.py").unlink()
    third = take_snapshot(project, None, state_dir=state)
    assert files_of(project, third.commit, gd) == {"tasks/t.py"}

    assert "+A = 2" in diff(project, "p1", "p2", state_dir=state)
    assert list_refs(project, state_dir=state) == {"p1": first.commit, "p2": second.commit}
    code = materialise(first, first.git_dir, state / "runs" / "p1" / "code")
    assert (code / "tasks" / "t.py").read_text() == "A = 1\n"
    assert not (project / ".git").exists()


def test_repository_without_commits(tmp_path: Path) -> None:
    project = tmp_path / "fresh"
    project.mkdir()
    git(project, "init", "-q", "-b", "trunk")
    write(project / "a.py", "staged\n")
    git(project, "add", "a.py")
    write(project / "b.py", "untracked\n")
    index_before = (project / ".git" / "index").read_bytes()

    snap = take_snapshot(project, "e1", state_dir=project / ".workbench")

    assert snap.head is None
    assert snap.branch == "trunk"
    assert snap.dirty is True
    assert files_of(project, snap.commit) == {"a.py", "b.py"}
    assert git(project, "rev-list", "--parents", "-n1", snap.commit).split() == [snap.commit]
    assert (project / ".git" / "index").read_bytes() == index_before
    assert git(project, "for-each-ref", "refs/heads") == ""  # still no commits


def test_empty_repository_without_index(tmp_path: Path) -> None:
    project = tmp_path / "blank"
    project.mkdir()
    git(project, "init", "-q")
    write(project / "only.py")
    snap = take_snapshot(project, None, state_dir=project / ".workbench")
    assert files_of(project, snap.commit) == {"only.py"}
    assert not (project / ".git" / "index").exists()


def test_detached_head(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD~1").strip()
    git(repo, "checkout", "-q", "--detach", first)
    write(repo / "tasks" / "train.py", "LR = 5\n")
    before = user_state(repo)
    snap = take_snapshot(repo, "d1", state_dir=repo / ".workbench")
    assert user_state(repo) == before
    assert snap.branch is None
    assert snap.head == first
    assert git(repo, "rev-parse", f"{snap.commit}^").strip() == first


def test_paths_with_spaces_and_unicode(tmp_path: Path) -> None:
    project = tmp_path / "my project é"
    write(project / "tâches" / "entraîner modèle.py", "X = 'ünï'\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "c")
    write(project / "tâches" / "entraîner modèle.py", "X = 'çà'\n")
    write(project / "nouveau dossier" / "fichier *[1].py", "Y = 1\n")
    write(project / ":colon.py", "Z = 1\n")
    snap = take_snapshot(project, "u1", state_dir=project / ".workbench")
    assert files_of(project, snap.commit) == {
        "tâches/entraîner modèle.py",
        "nouveau dossier/fichier *[1].py",
        ":colon.py",
    }
    code = materialise(snap, snap.git_dir, tmp_path / "code dir")
    assert (code / "tâches" / "entraîner modèle.py").read_text() == "X = 'çà'\n"
    patch = diff(project, snap, state_dir=project / ".workbench")
    assert patch == ""
    write(project / "tâches" / "entraîner modèle.py", "X = 'ß'\n")
    summary = diff(project, "u1", state_dir=project / ".workbench", stat=True)
    assert "tâches/entraîner modèle.py" in summary


def test_submodule_is_recorded_as_a_commit(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    write(lib / "lib.py", "L = 1\n")
    git(lib, "init", "-q", "-b", "main")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "lib")
    project = tmp_path / "app"
    write(project / "app.py", "import lib\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "ext/lib")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "with submodule")
    write(project / "ext" / "lib" / "lib.py", "L = 2\n")
    git(project / "ext" / "lib", "commit", "-q", "-am", "moved on")  # not committed above
    write(project / "ext" / "lib" / "lib.py", "L = 3\n")  # and dirty on top
    lib_head = git(project / "ext" / "lib", "rev-parse", "HEAD").strip()
    assert git(project, "ls-tree", "HEAD", "ext/lib").split()[2] != lib_head

    snap = take_snapshot(project, "s1", state_dir=project / ".workbench")

    entry = git(project, "ls-tree", snap.commit, "ext/lib").split()
    assert entry[:3] == ["160000", "commit", lib_head]
    assert ("ext/lib/", "submodule: its commit is recorded, not its files") in snap.excluded
    code = materialise(snap, snap.git_dir, tmp_path / "code")
    assert (code / "app.py").is_file()
    assert not (code / "ext" / "lib" / "lib.py").exists()


def test_git_missing_from_path_is_one_clear_error(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(SnapshotError) as info:
        take_snapshot(repo, "r", state_dir=repo / ".workbench")
    assert str(info.value) == "git was not found on PATH; install git to record each run's code"


def test_missing_project_folder(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="project folder not found"):
        SnapshotRepo.open(tmp_path / "nowhere")


def test_delete_ref_and_gc_leave_no_dangling_refs(repo: Path) -> None:
    state = repo / ".workbench"
    for run in ("r1", "r2", "r3", "r4"):
        write(repo / "tasks" / "train.py", f"RUN = {run!r}\n")
        take_snapshot(repo, run, state_dir=state)
    assert set(list_refs(repo, state_dir=state)) == {"r1", "r2", "r3", "r4"}

    assert delete_ref(repo, "r2", state_dir=state) is True
    assert delete_ref(repo, "r2", state_dir=state) is False
    assert gc(repo, {"r1", "gone"}, state_dir=state) == ["r3", "r4"]

    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/workbench")
    assert refs == "refs/workbench/runs/r1\n"
    assert gc(repo, {"r1"}, state_dir=state) == []
    assert gc(repo, set(), state_dir=state) == ["r1"]
    assert git(repo, "for-each-ref", "refs/workbench") == ""
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main\n"


def test_importing_the_package_pulls_in_no_heavy_modules() -> None:
    code = (
        "import sys, workbench.snapshot\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'textual', 'git', 'plotext')]\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_project_in_an_ignored_folder_uses_the_private_repository(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    write(outer / ".gitignore", "scratch/\n")
    write(outer / "keep.py")
    git(outer, "init", "-q", "-b", "main")
    git(outer, "add", "-A")
    git(outer, "commit", "-q", "-m", "c")
    project = outer / "scratch" / "proj"
    write(project / "t.py", "T = 1\n")
    snap = take_snapshot(project, "i1", state_dir=project / ".workbench")
    assert snap.private is True
    assert snap.prefix == ""
    assert files_of(project, snap.commit, f"--git-dir={snap.git_dir}") == {"t.py"}
    assert git(outer, "for-each-ref", "refs/workbench") == ""


def test_linked_worktree(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(other))
    write(other / "tasks" / "train.py", "LR = 7\n")
    index_file = Path(git(other, "rev-parse", "--git-path", "index").strip())
    index_file = index_file if index_file.is_absolute() else other / index_file
    index_before = index_file.read_bytes()
    snap = take_snapshot(other, "w1", state_dir=other / ".workbench")
    assert snap.branch == "side"
    assert git(repo, "show", "refs/workbench/runs/w1:tasks/train.py") == "LR = 7\n"
    assert index_file.read_bytes() == index_before
    assert git(other, "--no-optional-locks", "status", "--porcelain") == " M tasks/train.py\n"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_repository_owned_by_someone_else_is_one_clear_error(tmp_path: Path) -> None:
    project = tmp_path / "theirs"
    project.mkdir()
    git(project, "init", "-q")
    for path in [project, *project.rglob("*")]:
        os.lchown(path, 12345, 12345)
    with pytest.raises(SnapshotError, match="^git cannot read the repository at .*dubious"):
        take_snapshot(project, None, state_dir=project / ".workbench")
