"""Taking a snapshot: what it holds, and what it leaves alone."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from snapshot_helpers import GIT_ENV, git, user_state, write
from workbench.errors import WorkbenchError
from workbench.snapshot import REF_PREFIX, SnapshotError, SnapshotRepo, take_snapshot


def tree_files(repo: Path, commit: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "-z", "--name-only", commit).split("\0")) - {""}


def show(repo: Path, commit: str, path: str) -> str:
    return git(repo, "show", f"{commit}:{path}")


def test_snapshot_holds_working_tree_and_leaves_the_rest(repo: Path) -> None:
    state = repo / ".workbench"
    write(repo / "tasks" / "train.py", "LR = 0.5\n")  # modified, unstaged
    write(repo / "tasks" / "model.py", "WIDTH = 16\n")
    git(repo, "add", "tasks/model.py")  # staged ...
    write(repo / "tasks" / "model.py", "WIDTH = 32\n")  # ... then changed again
    (repo / "README.md").unlink()  # deleted
    write(repo / "tasks" / "new_task.py", "NEW = True\n")  # untracked
    write(repo / "notes" / "idea.md", "idea\n")  # untracked folder
    write(repo / "run.log", "ignored\n")  # ignored by .gitignore
    write(repo / "build" / "out.txt", "ignored\n")
    before = user_state(repo)

    snap = take_snapshot(repo, "run-1", state_dir=state)

    assert user_state(repo) == before
    files = tree_files(repo, snap.commit)
    assert files == {
        ".gitignore",
        "tasks/train.py",
        "tasks/model.py",
        "tasks/util.py",
        "tasks/new_task.py",
        "notes/idea.md",
    }
    assert show(repo, snap.commit, "tasks/train.py") == "LR = 0.5\n"
    assert show(repo, snap.commit, "tasks/model.py") == "WIDTH = 32\n"
    head = git(repo, "rev-parse", "HEAD").strip()
    assert snap.head == head
    assert git(repo, "rev-parse", f"{snap.commit}^").strip() == head
    assert snap.branch == "main"
    assert snap.dirty is True
    assert snap.private is False
    assert snap.prefix == ""
    assert snap.git_dir == (repo / ".git").resolve()
    assert git(repo, "rev-parse", REF_PREFIX + "run-1").strip() == snap.commit
    message = git(repo, "log", "-1", "--format=%s%n%an", snap.commit)
    assert message == "workbench snapshot for run run-1\nworkbench\n"


def test_stash_and_staged_changes_survive(repo: Path) -> None:
    write(repo / "tasks" / "train.py", "LR = 0.2\n")
    git(repo, "stash", "push", "-q", "-m", "keep me")
    write(repo / "tasks" / "util.py", "staged\n")
    git(repo, "add", "tasks/util.py")
    write(repo / "scratch.py", "untracked\n")
    before = user_state(repo)
    stash_commit = git(repo, "rev-parse", "refs/stash")

    snap = take_snapshot(repo, "r2", state_dir=repo / ".workbench")

    assert user_state(repo) == before
    assert git(repo, "rev-parse", "refs/stash") == stash_commit
    assert "keep me" in git(repo, "stash", "list")
    assert git(repo, "diff", "--cached", "--name-only") == "tasks/util.py\n"
    assert show(repo, snap.commit, "tasks/util.py") == "staged\n"
    assert show(repo, snap.commit, "tasks/train.py") == "LR = 0.1\n"  # stashed away
    assert "scratch.py" in tree_files(repo, snap.commit)


def test_clean_tree_is_not_dirty_and_matches_head(repo: Path) -> None:
    snap = take_snapshot(repo, None, state_dir=repo / ".workbench")
    assert snap.dirty is False
    assert snap.tree == git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert snap.run_id is None and snap.ref is None
    assert git(repo, "for-each-ref", "refs/workbench") == ""


def test_snapshot_without_run_id_creates_only_the_commit(repo: Path) -> None:
    write(repo / "tasks" / "train.py", "LR = 9\n")
    snap = take_snapshot(repo, None, state_dir=repo / ".workbench")
    assert snap.dirty is True
    assert git(repo, "cat-file", "-t", snap.commit) == "commit\n"
    assert git(repo, "for-each-ref", "refs/workbench") == ""
    assert show(repo, snap.commit, "tasks/train.py") == "LR = 9\n"


def test_ignored_only_untracked_is_clean_but_left_out_files_are_dirty(repo: Path) -> None:
    write(repo / "x.log", "ignored\n")
    assert take_snapshot(repo, None, state_dir=repo / ".workbench").dirty is False
    write(repo / "data" / "train.csv", "1,2\n")
    snap = take_snapshot(repo, None, state_dir=repo / ".workbench")
    assert snap.dirty is True
    assert snap.tree == git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert snap.code_dirty is False  # the code recorded is HEAD's: what a run's git_dirty says


def test_the_same_run_id_twice_is_refused(repo: Path) -> None:
    take_snapshot(repo, "same", state_dir=repo / ".workbench")
    with pytest.raises(SnapshotError, match="already has a snapshot"):
        take_snapshot(repo, "same", state_dir=repo / ".workbench")


@pytest.mark.parametrize("bad", ["", "../x", "a b", "-x", ".hidden", "x.lock", "a..b", "a/b"])
def test_bad_run_ids_are_refused(repo: Path, bad: str) -> None:
    with pytest.raises(SnapshotError, match="not a valid run id"):
        take_snapshot(repo, bad, state_dir=repo / ".workbench")
    assert git(repo, "for-each-ref", "refs/workbench") == ""


def test_snapshot_error_is_a_workbench_error() -> None:
    assert issubclass(SnapshotError, WorkbenchError)


def test_to_dict_is_json_and_round_trips(repo: Path) -> None:
    write(repo / "data" / "x.csv")
    snap = take_snapshot(repo, "rt", state_dir=repo / ".workbench")
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["ref"] == REF_PREFIX + "rt"
    assert data["excluded"] == [["data/", "heavy folder (data)"]]
    assert type(snap).from_dict(data) == snap


def test_signing_config_does_not_break_the_commit(repo: Path) -> None:
    git(repo, "config", "commit.gpgSign", "true")
    git(repo, "config", "gpg.program", "false")
    write(repo / "tasks" / "train.py", "LR = 3\n")
    snap = take_snapshot(repo, "signed", state_dir=repo / ".workbench")
    assert show(repo, snap.commit, "tasks/train.py") == "LR = 3\n"


def test_repo_object_reports_where_things_are(repo: Path) -> None:
    sub = repo / "tasks"
    opened = SnapshotRepo.open(sub, sub / ".workbench")
    assert opened.work_tree == repo.resolve()
    assert opened.prefix == "tasks"
    assert opened.private is False
    assert "tasks" in repr(opened)


def test_in_the_middle_of_a_merge_conflict(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "other")
    write(repo / "tasks" / "train.py", "LR = 'other'\n")
    git(repo, "commit", "-q", "-am", "other")
    git(repo, "checkout", "-q", "main")
    write(repo / "tasks" / "train.py", "LR = 'main'\n")
    git(repo, "commit", "-q", "-am", "main")
    done = subprocess.run(
        ["git", "merge", "-q", "other"],
        cwd=repo,
        capture_output=True,
        env={**os.environ, **GIT_ENV},
        check=False,
    )
    assert done.returncode == 1  # a conflict
    before = user_state(repo)
    assert "UU tasks/train.py" in str(before["status"])

    snap = take_snapshot(repo, "conflict", state_dir=repo / ".workbench")

    assert user_state(repo) == before
    assert (repo / ".git" / "MERGE_HEAD").exists()
    recorded = show(repo, snap.commit, "tasks/train.py")
    assert recorded == (repo / "tasks" / "train.py").read_text()
    assert "<<<<<<<" in recorded


def test_intent_to_add_files_are_recorded(repo: Path) -> None:
    write(repo / "data" / "loader.py", "LOADER = 1\n")  # a heavy name, but tracked
    git(repo, "add", "-N", "data/loader.py")
    before = user_state(repo)
    snap = take_snapshot(repo, None, state_dir=repo / ".workbench")
    assert user_state(repo) == before
    assert show(repo, snap.commit, "data/loader.py") == "LOADER = 1\n"
    assert snap.excluded == ()


@pytest.mark.parametrize("private", [False, True])
def test_concurrent_snapshots_do_not_collide(repo: Path, tmp_path: Path, private: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    root = repo
    if private:
        root = tmp_path / "plain"
        write(root / "a.py", "A = 1\n")
    write(root / "new.py", "NEW = 1\n")
    state = root / ".workbench"
    with ThreadPoolExecutor(max_workers=4) as pool:
        snaps = list(pool.map(lambda i: take_snapshot(root, f"c{i}", state_dir=state), range(4)))
    opened = SnapshotRepo.open(root, state)
    assert opened.list_refs() == {s.run_id: s.commit for s in snaps}
    assert len({s.tree for s in snaps}) == 1
