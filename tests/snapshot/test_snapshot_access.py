"""Repository access through GitPython: the environment guard, and nothing left running."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from snapshot_helpers import git, user_state, write

from workbench.snapshot import (
    SnapshotError,
    delete_ref,
    diff,
    gc as gc_refs,
    list_refs,
    materialise,
    take_snapshot,
)
from workbench.snapshot._access import LOCATING_VARIABLES, GitAccess, guard

# Every variable that could send git elsewhere, pointed at a decoy repository; the
# pathspec ones together would make every pathspec command fail ("incompatible").
POLLUTION = {
    "GIT_NAMESPACE": "decoy",
    "GIT_PREFIX": "tasks/",
    "GIT_LITERAL_PATHSPECS": "1",
    "GIT_GLOB_PATHSPECS": "1",
    "GIT_ICASE_PATHSPECS": "1",
}


@pytest.fixture
def decoy(tmp_path: Path) -> Path:
    """Another repository, which the polluted environment points at."""
    root = tmp_path / "decoy"
    write(root / "decoy.py", "DECOY = 1\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "decoy")
    return root


def decoy_state(decoy: Path) -> dict[str, object]:
    return {
        "index": (decoy / ".git" / "index").read_bytes(),
        "refs": git(decoy, "for-each-ref", "--format=%(refname) %(objectname)"),
        "objects": git(decoy, "count-objects", "-v"),
    }


def pollute(monkeypatch: pytest.MonkeyPatch, decoy: Path) -> None:
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    monkeypatch.setenv("GIT_INDEX_FILE", str(decoy / ".git" / "index"))
    monkeypatch.setenv("GIT_COMMON_DIR", str(decoy / ".git"))
    for name, value in POLLUTION.items():
        monkeypatch.setenv(name, value)


def test_the_guard_names_every_locating_variable(tmp_path: Path) -> None:
    env = guard(tmp_path / ".git", tmp_path, tmp_path / "index")
    assert set(LOCATING_VARIABLES) <= set(env)
    assert env["GIT_OPTIONAL_LOCKS"] == "0"
    assert env["GIT_DIR"] == str(tmp_path / ".git")


def test_git_variables_in_the_environment_point_nowhere(
    repo: Path, decoy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = repo / ".workbench"
    write(repo / "tasks" / "train.py", "LR = 0.4\n")
    write(repo / "tasks" / "new.py", "NEW = 1\n")
    before, decoy_before = user_state(repo), decoy_state(decoy)

    with monkeypatch.context() as m:
        pollute(m, decoy)
        snap = take_snapshot(repo, "p1", state_dir=state)
        other = take_snapshot(repo, "p2", state_dir=state)
        write(repo / "tasks" / "train.py", "LR = 0.5\n")
        patch = diff(repo, "p1", state_dir=state)
        code = materialise(snap, snap.git_dir, tmp_path / "code")
        refs = list_refs(repo, state_dir=state)
        deleted = delete_ref(repo, "p2", state_dir=state)
        collected = gc_refs(repo, set(), state_dir=state)
        write(repo / "tasks" / "train.py", "LR = 0.4\n")

    assert user_state(repo) == before
    assert decoy_state(decoy) == decoy_before
    assert snap.git_dir == (repo / ".git").resolve() and snap.branch == "main"
    assert git(repo, "show", f"{snap.commit}:tasks/train.py") == "LR = 0.4\n"
    assert git(repo, "show", f"{snap.commit}:tasks/new.py") == "NEW = 1\n"
    assert "-LR = 0.4\n+LR = 0.5" in patch
    assert (code / "tasks" / "new.py").read_text() == "NEW = 1\n"
    assert not (code / "decoy.py").exists()
    assert refs == {"p1": snap.commit, "p2": other.commit}
    assert deleted is True and collected == ["p1"]
    assert git(repo, "for-each-ref", "refs/workbench", "refs/namespaces") == ""


def test_a_private_repository_is_made_in_a_polluted_environment(
    tmp_path: Path, decoy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "plain"
    write(project / "t.py", "T = 1\n")
    decoy_before = decoy_state(decoy)
    with monkeypatch.context() as m:
        pollute(m, decoy)
        snap = take_snapshot(project, "q1", state_dir=project / ".workbench")
    assert snap.private is True
    assert decoy_state(decoy) == decoy_before
    gd = f"--git-dir={snap.git_dir}"
    assert git(project, gd, "show", "refs/workbench/runs/q1:t.py") == "T = 1\n"
    assert git(project, gd, "config", "core.bare") == "true\n"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_ownership_is_checked_with_git_dir_set(
    tmp_path: Path, decoy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "theirs"
    project.mkdir()
    git(project, "init", "-q")
    for path in [project, *project.rglob("*")]:
        os.lchown(path, 12345, 12345)
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    with pytest.raises(SnapshotError, match="^git cannot read the repository at .*dubious"):
        take_snapshot(project, None, state_dir=project / ".workbench")


def _git_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "git" in child.name():
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def _gitpython_wrappers() -> int:
    import git as gitpython

    gc.collect()
    return sum(isinstance(o, gitpython.Git) for o in gc.get_objects())


def test_nothing_outlives_an_operation(repo: Path, tmp_path: Path) -> None:
    state = repo / ".workbench"
    take_snapshot(repo, "warm", state_dir=state)
    wrappers = _gitpython_wrappers()
    write(repo / "tasks" / "train.py", "LR = 2\n")
    snap = take_snapshot(repo, "o1", state_dir=state)
    diff(repo, "warm", "o1", state_dir=state)
    materialise(snap, snap.git_dir, tmp_path / "code")
    list_refs(repo, state_dir=state)
    assert _git_children() == []
    assert _gitpython_wrappers() == wrappers


def test_closing_ends_a_command_still_running(repo: Path) -> None:
    access = GitAccess(repo, guard(repo / ".git", repo, repo / ".git" / "index"))
    # Input this large is kept for wait(), so cat-file sits waiting on its stdin.
    waiting = access.start(["cat-file", "--batch"], input=b"HEAD\n" * 10_000)
    assert waiting._process.proc.poll() is None
    access.close()
    assert waiting._process.proc.poll() is not None
    assert _git_children() == []


def test_git_missing_when_gitpython_is_first_loaded(repo: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from workbench.snapshot import SnapshotError, take_snapshot\n"
        "try:\n"
        f"    take_snapshot({str(repo)!r}, None, state_dir={str(repo / '.workbench')!r})\n"
        "except SnapshotError as exc:\n"
        "    print(exc)\n"
        "print('git' in sys.modules)\n"
    )
    empty = tmp_path / "no-bin"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PATH": str(empty)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "git was not found on PATH; install git to record each run's code",
        "False",
    ]
