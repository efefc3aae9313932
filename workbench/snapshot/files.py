"""Writing a snapshot's files to a folder, and diffing two snapshots."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from workbench.snapshot._access import GitAccess, guard
from workbench.snapshot.model import Snapshot, SnapshotError

__all__ = ["checkout", "diff_commits", "materialise"]


def _commit_and_prefix(what: Snapshot | str, prefix: str | None) -> tuple[str, str]:
    if isinstance(what, Snapshot):
        return what.commit, what.prefix if prefix is None else prefix
    return str(what), prefix or ""


def materialise(
    snapshot_or_commit: Snapshot | str,
    git_dir: Path | str,
    dest: Path | str,
    prefix: str | None = None,
) -> Path:
    """Writes a snapshot's files to ``dest`` (a run's ``code/`` folder).

    The files are written with ``git checkout-index`` from a temporary index into a
    hidden folder beside ``dest``, which is then renamed to ``dest``: a reader never
    sees half a tree, and a failure leaves nothing behind. Executable bits and
    symbolic links are kept; a submodule is an empty folder.

    Args:
        snapshot_or_commit: a Snapshot, or a commit id in ``git_dir``.
        git_dir: the repository holding the commit (``Snapshot.git_dir``).
        dest: the folder to create; it must not exist or must be empty.
        prefix: write only the files under this folder of the repository, with the
            folder stripped. None means the snapshot's project folder
            (``Snapshot.prefix``; ``""``, the whole tree, for a bare commit id).
            ``""`` writes the whole repository tree.

    Returns:
        ``dest``.

    Raises:
        SnapshotError: ``dest`` holds files, the commit or folder is not in the
            repository, or git failed.
    """
    commit, sub = _commit_and_prefix(snapshot_or_commit, prefix)
    dest = Path(dest)
    _refuse_non_empty(dest)
    git_dir = Path(git_dir)
    # "<commit>:<folder>" names the folder's tree; "^{tree}" cannot follow a path.
    treeish = f"{commit}:{sub.strip('/')}" if sub.strip("/") else f"{commit}^{{tree}}"
    with _objects_only(git_dir) as git:
        found = git.run(["rev-parse", "-q", "--verify", treeish], check=False)
    if found.returncode != 0:
        where = f"folder {sub!r} of " if sub.strip("/") else ""
        raise SnapshotError(f"{where}snapshot {commit[:12]} is not in {git_dir}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="workbench-checkout-") as tmp:
            index = Path(tmp) / "index"
            # The staging folder is the work tree, the temporary index the index.
            with GitAccess(staging, guard(git_dir, staging, index)) as writer:
                writer.run(["read-tree", os.fsdecode(found.stdout).strip()])
                # Writing many small files waits on the filesystem more than on the
                # CPU: git's parallel checkout pays off even with more workers than cores.
                workers = min(8, max(4, os.cpu_count() or 1))
                writer.run(
                    ["-c", f"checkout.workers={workers}", "checkout-index", "--all", "--force"]
                )
        # mkdtemp makes a private (0700) folder; give code/ its parent's permissions.
        os.chmod(staging, dest.parent.stat().st_mode & 0o777)
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def checkout(
    snapshot_or_commit: Snapshot | str,
    git_dir: Path | str,
    dest: Path | str,
    prefix: str | None = None,
) -> Path:
    """Writes a run's code to a folder for a person to read or run (``workbench checkout``).

    The same as :func:`materialise`; the folder must be new or empty.

    Args:
        snapshot_or_commit: a Snapshot, or a commit id in ``git_dir``.
        git_dir: the repository holding the commit.
        dest: the folder to write.
        prefix: as for :func:`materialise`.

    Returns:
        ``dest``.

    Raises:
        SnapshotError: ``dest`` holds files, or the snapshot is not in the repository.
    """
    return materialise(snapshot_or_commit, git_dir, dest, prefix)


def diff_commits(
    git_dir: Path | str,
    a: str,
    b: str,
    *,
    stat: bool = False,
    color: bool = False,
    paths: tuple[str, ...] = (),
    work_tree: Path | str | None = None,
) -> str:
    """The ``git diff`` from commit ``a`` to commit ``b``, as text.

    Args:
        git_dir: the repository holding both commits.
        a: the older commit.
        b: the newer commit.
        stat: a ``--stat`` summary instead of the full patch.
        color: ANSI colours (for a pager that shows them, like ``less -R``).
        paths: limit the diff to these repository paths.
        work_tree: the repository's work tree, whose ``.gitattributes`` (binary
            files, diff drivers) the diff follows; None: none are followed.

    Returns:
        The diff; empty when the two trees are the same.

    Raises:
        SnapshotError: a commit is not in the repository.
    """
    args = [
        "-c",
        "core.quotePath=false",
        "diff",
        "--no-ext-diff",
        f"--color={'always' if color else 'never'}",
    ]
    if stat:
        args.append("--stat")
    args += [a, b, "--", *paths]
    with _objects_only(Path(git_dir), work_tree) as git:
        done = git.run(args, literal=True)
    return done.stdout.decode("utf-8", errors="replace")


def _objects_only(git_dir: Path, work_tree: Path | str | None = None) -> GitAccess:
    """Access for commands that read objects, run in the work tree when one is given.

    Without one, the git dir stands in as the work tree: these commands never write
    to it, and naming one keeps a ``GIT_WORK_TREE`` from the environment out. (A diff
    of two commits reads ``.gitattributes`` from where it runs.)
    """
    top = Path(work_tree) if work_tree and Path(work_tree).is_dir() else git_dir
    return GitAccess(top, guard(git_dir, top, git_dir / "index"))


def _refuse_non_empty(dest: Path) -> None:
    if dest.is_dir():
        if any(dest.iterdir()):
            raise SnapshotError(f"refusing to write into {dest}: the folder is not empty")
    elif dest.exists() or dest.is_symlink():
        raise SnapshotError(f"refusing to write to {dest}: it exists and is not a folder")
