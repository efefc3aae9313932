"""What a snapshot records, and the error this package raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["REF_PREFIX", "Snapshot", "SnapshotError"]

#: Where run snapshots live in the repository. Not under refs/heads, refs/tags or
#: refs/remotes, so a plain ``git push`` or ``git fetch`` never moves them.
REF_PREFIX = "refs/workbench/runs/"


class SnapshotError(WorkbenchError):
    """A snapshot could not be taken, read or written (the message is one line)."""


@dataclass(frozen=True)
class Snapshot:
    """One recorded state of a project's code.

    Attributes:
        commit: the snapshot commit (hex object id).
        head: the commit HEAD pointed at (the snapshot's parent), or None when the
            repository had no commits yet or is the private repository.
        branch: the checked-out branch (``"main"``), or None when HEAD is detached
            or the repository is the private one.
        dirty: True when the working tree differed from HEAD: tracked changes, or
            untracked files that are not ignored (included or left out).
        excluded: ``(path, reason)`` for every untracked path left out (folders end
            in ``/``), plus notes for submodules, whose commit alone is recorded.
        private: True when the project is not in a git repository and the snapshot
            lives in workbench's private repository (``<state_dir>/git``).
        git_dir: the git dir holding the commit.
        work_tree: the top of the work tree that was recorded.
        prefix: the project's folder inside the work tree (``""`` at the top,
            else POSIX like ``"ml/project"``).
        run_id: the run it was taken for, or None.
        tree: the snapshot's tree object id.
        code_dirty: True when the recorded code differs from HEAD's (its tree is not
            HEAD's tree); False when only left-out untracked files (a data folder, the
            state folder) made the working tree differ. What a run's ``git_dirty`` says.
    """

    commit: str
    head: str | None
    branch: str | None
    dirty: bool
    excluded: tuple[tuple[str, str], ...] = field(default=())
    private: bool = False
    git_dir: Path = Path()
    work_tree: Path = Path()
    prefix: str = ""
    run_id: str | None = None
    tree: str = ""
    code_dirty: bool | None = None

    @property
    def ref(self) -> str | None:
        """The ref naming this snapshot (``refs/workbench/runs/<id>``), if it has one."""
        return None if self.run_id is None else REF_PREFIX + self.run_id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings, ``excluded`` as a list of pairs)."""
        return {
            "commit": self.commit,
            "tree": self.tree,
            "head": self.head,
            "branch": self.branch,
            "dirty": self.dirty,
            "code_dirty": self.code_dirty,
            "excluded": [[path, reason] for path, reason in self.excluded],
            "private": self.private,
            "git_dir": str(self.git_dir),
            "work_tree": str(self.work_tree),
            "prefix": self.prefix,
            "run_id": self.run_id,
            "ref": self.ref,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        """Rebuilds a Snapshot from ``to_dict()``'s output (unknown keys are ignored).

        Raises:
            SnapshotError: a required key (``commit``) is missing.
        """
        if not data.get("commit"):
            raise SnapshotError("snapshot record has no commit")
        return cls(
            commit=str(data["commit"]),
            head=data.get("head"),
            branch=data.get("branch"),
            dirty=bool(data.get("dirty", False)),
            excluded=tuple((str(p), str(r)) for p, r in data.get("excluded", ())),
            private=bool(data.get("private", False)),
            git_dir=Path(data.get("git_dir", "")),
            work_tree=Path(data.get("work_tree", "")),
            prefix=str(data.get("prefix", "")),
            run_id=data.get("run_id"),
            tree=str(data.get("tree", "")),
            code_dirty=None if data.get("code_dirty") is None else bool(data["code_dirty"]),
        )
