"""Module-level helpers: one call each, for callers that do not keep a SnapshotRepo."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workbench.snapshot.files import diff_commits
from workbench.snapshot.model import Snapshot
from workbench.snapshot.repo import DEFAULT_MAX_FILE_BYTES, SnapshotRepo

__all__ = ["add_ref", "delete_ref", "diff", "gc", "list_refs", "take_snapshot"]


def take_snapshot(
    root: Path | str,
    run_id: str | None,
    *,
    state_dir: Path | str,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    exclude: Sequence[str] = (),
) -> Snapshot:
    """Records a project's working tree as a commit (see :meth:`SnapshotRepo.take`).

    Args:
        root: the project folder.
        run_id: store the commit as ``refs/workbench/runs/<run_id>``; None only
            makes the commit (``workbench snapshot``).
        state_dir: the project's state folder (``.workbench``); left out of the
            snapshot, and home of the private repository for a non-git folder.
        max_file_bytes: untracked files larger than this are left out
            (``[snapshot] max_file_size_mb``).
        exclude: ``.gitignore``-style patterns of untracked paths to leave out
            (``[snapshot] exclude``).

    Returns:
        The snapshot.

    Raises:
        SnapshotError: git is missing, the run already has a snapshot, or git failed.
    """
    repo = SnapshotRepo.open(root, state_dir)
    return repo.take(run_id, max_file_bytes=max_file_bytes, exclude=exclude)


def diff(
    root: Path | str,
    a: Snapshot | str,
    b: Snapshot | str | None = None,
    *,
    state_dir: Path | str,
    stat: bool = False,
    color: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    exclude: Sequence[str] = (),
) -> str:
    """The code diff from ``a`` to ``b``, or to the working tree when ``b`` is None.

    ``a`` and ``b`` are Snapshots, run ids with a snapshot ref, or commits. A Snapshot
    from another repository (its ``git_dir``) is diffed in that repository.

    Returns:
        The diff text, for the CLI to page.

    Raises:
        SnapshotError: a snapshot is unknown, or git failed.
    """
    if isinstance(a, Snapshot) and isinstance(b, Snapshot) and a.git_dir == b.git_dir:
        return diff_commits(
            a.git_dir, a.commit, b.commit, stat=stat, color=color, work_tree=a.work_tree
        )
    repo = SnapshotRepo.open(root, state_dir)
    return repo.diff(
        a, b, stat=stat, color=color, max_file_bytes=max_file_bytes, exclude=exclude
    )


def list_refs(root: Path | str, *, state_dir: Path | str) -> dict[str, str]:
    """``{run_id: commit}`` for every run with a snapshot ref in the project's repository."""
    return SnapshotRepo.open(root, state_dir).list_refs()


def add_ref(root: Path | str, snapshot: Snapshot, run_id: str, *, state_dir: Path | str) -> Snapshot:
    """Gives run ``run_id`` its own ref at an existing snapshot's commit (one snapshot per sweep).

    Each run keeps its own ref, so ``workbench rm`` and ``gc`` work per run; the commit
    stays while any of them names it.

    Returns:
        The snapshot, with ``run_id`` set.

    Raises:
        SnapshotError: the run already has a snapshot, or the commit is unknown.
    """
    return SnapshotRepo.open(root, state_dir).add_ref(snapshot, run_id)


def delete_ref(root: Path | str, run_id: str, *, state_dir: Path | str) -> bool:
    """Deletes a run's snapshot ref (``workbench rm``); True if there was one."""
    return SnapshotRepo.open(root, state_dir).delete_ref(run_id)


def gc(root: Path | str, keep: set[str] | frozenset[str], *, state_dir: Path | str) -> list[str]:
    """Deletes the snapshot refs of runs not in ``keep`` (``workbench gc``).

    The commits are left to git's own ``git gc``, which prunes unreachable objects
    after its grace period (two weeks by default).

    Returns:
        The run ids whose refs were deleted.
    """
    return SnapshotRepo.open(root, state_dir).gc(keep)
