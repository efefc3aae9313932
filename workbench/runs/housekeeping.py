"""``workbench gc``: which run folders and snapshot refs belong to no run, and removing them.

A run folder holds a run's checkpoints, artifacts and code; its row in the index is only
a record of it. So ``gc`` removes a folder only when nothing says it is still wanted:

* a folder whose trainer lock is held (a training process lives) stays;
* a folder whose launch lock is held (a launch is making it; its row is not written yet)
  stays, and so does a brand-new folder without ``run.toml`` (a launch between making the
  folder and taking its lock);
* when the index looks lost or emptied — it holds no runs, or fewer runs than there are
  run folders without a row — nothing is removed: ``workbench index rebuild`` brings those
  runs back (``--force`` removes them anyway).

Each folder is removed under its own launch lock, after a last look at the index, so a
launch that finishes meanwhile keeps its folder. See DESIGN.md, "Who owns a run".
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.runs.locks import LAUNCH_LOCK, FileLock, LockHeld, held_by_someone, trainer_alive

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.store import RunIndex

__all__ = [
    "NEW_FOLDER_GRACE_S",
    "GcPlan",
    "GcResult",
    "apply_gc",
    "check_index_not_lost",
    "empty_index_message",
    "folder_size",
    "plan_gc",
    "run_folders",
]

#: A run folder younger than this without ``run.toml`` may be a launch that has made the
#: folder but not yet taken its launch lock: ``gc`` leaves it.
NEW_FOLDER_GRACE_S = 60.0


@dataclass(frozen=True)
class GcPlan:
    """What ``gc`` would remove, and what it leaves and why.

    Attributes:
        folders: Run folders whose runs are not in the index.
        refs: Run ids whose snapshot refs would be deleted.
        kept: ``(run id, why)`` for the folders without a row that stay.
        indexed: How many runs the index holds.
        recoverable: Ids of the folders in ``folders`` that hold a ``run.toml``
            (``workbench index rebuild`` could bring their runs back).
    """

    folders: tuple[Path, ...]
    refs: tuple[str, ...]
    kept: tuple[tuple[str, str], ...]
    indexed: int
    recoverable: tuple[str, ...]

    @property
    def index_looks_lost(self) -> bool:
        """Whether the index seems deleted or emptied rather than pruned on purpose.

        True when run folders with a ``run.toml`` have no row and the index holds no runs,
        or fewer runs than such folders.
        """
        lost = len(self.recoverable)
        return lost > 0 and (self.indexed == 0 or lost > self.indexed)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to remove."""
        return not self.folders and not self.refs


@dataclass(frozen=True)
class GcResult:
    """What ``gc`` removed.

    Attributes:
        folders: Run ids whose folders were removed.
        refs: Run ids whose snapshot refs were deleted.
        kept: ``(run id, why)`` for the planned folders left at the last moment.
    """

    folders: tuple[str, ...]
    refs: tuple[str, ...]
    kept: tuple[tuple[str, str], ...]


def run_folders(project: Project) -> list[Path]:
    """The folders under the project's runs folder, by name (a missing runs folder: none)."""
    runs = project.runs_dir
    if not runs.is_dir():
        return []
    return sorted((p for p in runs.iterdir() if p.is_dir() and not p.is_symlink()), key=lambda p: p.name)


def _why_kept(path: Path, now: float) -> str | None:
    """Why a folder without a row must stay, or None when it may go."""
    if trainer_alive(path):
        return "a training process holds it (its trainer lock is held)"
    if held_by_someone(path / LAUNCH_LOCK):
        return "a launch is still writing it (its launch lock is held)"
    if not (path / "run.toml").is_file():
        try:
            young = now - path.stat().st_mtime < NEW_FOLDER_GRACE_S
        except OSError:
            young = False
        if young:
            return f"made less than {NEW_FOLDER_GRACE_S:.0f} s ago, without run.toml (a launch may be starting)"
    return None


def plan_gc(project: Project, index: RunIndex) -> GcPlan:
    """Find the run folders and snapshot refs of runs that are not in the index.

    Nothing is changed.
    """
    from workbench.snapshot import SnapshotError, list_refs

    known = index.run_ids()
    now = time.time()
    folders: list[Path] = []
    kept: list[tuple[str, str]] = []
    recoverable: list[str] = []
    for path in run_folders(project):
        if path.name in known:
            continue
        why = _why_kept(path, now)
        if why is not None:
            kept.append((path.name, why))
            continue
        folders.append(path)
        if (path / "run.toml").is_file():
            recoverable.append(path.name)
    try:
        refs = list_refs(project.root, state_dir=project.state_dir)
    except SnapshotError:
        refs = {}
    staying = known | {run_id for run_id, _ in kept}
    doomed = tuple(run_id for run_id in refs if run_id not in staying)
    return GcPlan(tuple(folders), doomed, tuple(kept), len(known), tuple(recoverable))


def check_index_not_lost(plan: GcPlan, project: Project) -> None:
    """Refuse a gc that would delete the runs of a lost or emptied index.

    Raises:
        WorkbenchError: One line pointing at ``workbench index rebuild``.
    """
    if plan.index_looks_lost:
        raise WorkbenchError(
            f"not removing anything: {len(plan.recoverable)} run folder(s) have no row in "
            f"{project.index_path}, which holds {plan.indexed} run(s); the index looks lost or "
            "emptied. Bring the runs back with `workbench index rebuild` (or pass --force to "
            "delete them with their checkpoints)")


def apply_gc(project: Project, index: RunIndex, plan: GcPlan) -> GcResult:
    """Remove what ``plan`` lists, looking once more at each folder under its launch lock.

    A folder whose run has appeared in the index meanwhile, or whose trainer or launch lock
    is held now, stays; its snapshot ref stays with it.
    """
    from workbench.snapshot import SnapshotError, list_refs
    from workbench.snapshot import gc as gc_refs

    removed: list[str] = []
    kept: list[tuple[str, str]] = []
    for path in plan.folders:
        try:
            lock = FileLock(path / LAUNCH_LOCK).acquire(wait=0)
        except LockHeld:
            kept.append((path.name, "a launch is still writing it (its launch lock is held)"))
            continue
        except FileNotFoundError:
            continue  # removed by someone else meanwhile
        try:
            if index.get_run(path.name) is not None:
                kept.append((path.name, "its run is in the index now"))
            elif trainer_alive(path):
                kept.append((path.name, "a training process holds it (its trainer lock is held)"))
            else:
                shutil.rmtree(path)
                removed.append(path.name)
        finally:
            lock.release()
    staying = index.run_ids() | {run_id for run_id, _ in kept}
    doomed = set(plan.refs) - staying
    refs: list[str] = []
    if doomed:
        try:
            keep = set(list_refs(project.root, state_dir=project.state_dir)) - doomed
            refs = gc_refs(project.root, keep | staying, state_dir=project.state_dir)
        except SnapshotError as exc:
            raise WorkbenchError(f"removed {len(removed)} run folder(s), but not the snapshot refs: {exc}") from None
    return GcResult(tuple(removed), tuple(refs), tuple(kept))


def folder_size(path: Path) -> int:
    """The bytes of the files under ``path`` (links are not followed)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def empty_index_message(project: Project) -> str:
    """What ``ls`` says when the index holds no runs: if run folders exist, the index was
    lost or emptied, and ``workbench index rebuild`` brings them back."""
    folders = [p for p in run_folders(project) if (p / "run.toml").is_file()]
    if folders:
        return (f"the index {project.index_path} holds no runs, but {len(folders)} run folder(s) in "
                f"{project.runs_dir} do: the index was deleted or emptied; bring the runs back "
                "with: workbench index rebuild")
    return f"no runs yet in {project.index_path}; start one with: workbench run TASK"
