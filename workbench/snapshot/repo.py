"""SnapshotRepo: take, store, compare and write out snapshots of a project's code."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from workbench.snapshot._access import (
    GitAccess,
    Started,
    discover,
    first_line,
    guard,
    run_clean,
)
from workbench.snapshot._guards import MIB, PathFilter, UntrackedScan, scan_untracked
from workbench.snapshot.files import diff_commits, materialise
from workbench.snapshot.model import REF_PREFIX, Snapshot, SnapshotError

__all__ = ["DEFAULT_MAX_FILE_BYTES", "SnapshotRepo", "check_run_id"]

#: Untracked files larger than this are left out unless workbench.toml says otherwise.
DEFAULT_MAX_FILE_BYTES = 10 * MIB

_SUBMODULE_NOTE = "submodule: its commit is recorded, not its files"

_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")


def check_run_id(run_id: str) -> str:
    """Returns ``run_id`` if it can name a ref, else raises SnapshotError.

    Run ids are letters, digits, ``.``, ``_`` and ``-``; they cannot start with
    ``.`` or ``-``, hold ``..`` or end in ``.lock`` (git's rules for ref names).
    """
    if (
        not isinstance(run_id, str)
        or not _RUN_ID.match(run_id)
        or ".." in run_id
        or run_id.endswith((".lock", "."))
    ):
        raise SnapshotError(f"not a valid run id for a snapshot ref: {run_id!r}")
    return run_id


@dataclass(frozen=True)
class _Head:
    commit: str | None
    tree: str | None
    branch: str | None


class SnapshotRepo:
    """The git repository that holds a project's snapshots.

    Open one with :meth:`open`; it finds the repository around the project folder,
    or uses (and creates on the first snapshot) the private repository
    ``<state_dir>/git`` when the folder is not in one.

    Attributes:
        root: the project folder.
        state_dir: the project's state folder (``<root>/.workbench``).
        git_dir: the repository's git dir.
        work_tree: the top of the work tree (the project folder, or a parent of it).
        prefix: the project folder relative to ``work_tree`` (POSIX, ``""`` at top).
        private: whether this is workbench's private repository.
    """

    def __init__(
        self,
        root: Path,
        state_dir: Path,
        git_dir: Path,
        work_tree: Path,
        prefix: str,
        private: bool,
    ) -> None:
        self.root = root
        self.state_dir = state_dir
        self.git_dir = git_dir
        self.work_tree = work_tree
        self.prefix = prefix
        self.private = private

    def _open(self) -> GitAccess:
        """GitPython's command wrapper for one operation, guarded; close it after use."""
        env = guard(self.git_dir, self.work_tree, self.git_dir / "index")
        return GitAccess(self.work_tree, env)

    def __repr__(self) -> str:
        kind = "private" if self.private else "git"
        return f"SnapshotRepo({kind}, git_dir={str(self.git_dir)!r}, prefix={self.prefix!r})"

    @classmethod
    def open(cls, root: Path | str, state_dir: Path | str | None = None) -> SnapshotRepo:
        """Finds the repository for a project folder.

        Args:
            root: the project folder.
            state_dir: its state folder; ``<root>/.workbench`` when None.

        Returns:
            The repository; nothing on disk is created or changed.

        Raises:
            SnapshotError: the folder does not exist, git is missing, or git refuses
                the repository (for example, one owned by another user).
        """
        root = Path(root).resolve()
        state = Path(state_dir).resolve() if state_dir is not None else root / ".workbench"
        if not root.is_dir():
            raise SnapshotError(f"project folder not found: {root}")
        found = discover(root)
        if found is not None:
            repo = cls(root, state, found.git_dir, found.work_tree, found.prefix, private=False)
            if not found.prefix or not repo._ignores_project():
                return repo
        # Not in a repository, or in a folder the enclosing repository ignores.
        return cls(root, state, state / "git", root, "", private=True)

    def _ignores_project(self) -> bool:
        """Whether the enclosing repository's ignore rules cover the project folder."""
        with self._open() as git:
            done = git.run(["check-ignore", "-q", "--", f"{self.prefix}/"], check=False)
        return done.returncode == 0

    # -- taking a snapshot ----------------------------------------------------------

    def take(
        self,
        run_id: str | None = None,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        exclude: Sequence[str] = (),
    ) -> Snapshot:
        """Records the working tree as a commit, and names it for ``run_id``.

        Tracked files are recorded as they are on disk (staged or not); untracked
        files that git does not ignore are recorded unless they are left out (see
        :class:`~workbench.snapshot._guards.PathFilter`). HEAD, the branch, the
        index, the stash and the working tree are not touched.

        Args:
            run_id: store the commit as ``refs/workbench/runs/<run_id>``; with None
                only the commit object is made ("what a run launched now would
                record").
            max_file_bytes: untracked files larger than this are left out.
            exclude: ``.gitignore``-style patterns, relative to the project folder,
                of untracked paths to leave out.

        Returns:
            The snapshot.

        Raises:
            SnapshotError: the run id is invalid or already has a snapshot, or git
                failed.
        """
        if run_id is not None:
            check_run_id(run_id)
        if self.private:
            self._ensure_private()
        path_filter = PathFilter(exclude, self.prefix, self._state_rel())
        with self._open() as git:
            # Independent git calls overlap: HEAD is read and tracked files are
            # re-added while the untracked files are being listed.
            head_lookup = None if self.private else _start_head_lookup(git)
            try:
                scan, tree = self._write_tree(git, path_filter, max_file_bytes)
            finally:
                head = self._finish_head_lookup(head_lookup)
            excluded = scan.finish_report()
            message = "workbench snapshot" + (f" for run {run_id}" if run_id else "")
            parents = ["-p", head.commit] if head.commit else []
            commit = git.out(["commit-tree", "--no-gpg-sign", *parents, "-m", message, tree])
            if run_id is not None:
                _create_ref(git, run_id, commit)
        return Snapshot(
            commit=commit,
            head=head.commit,
            branch=head.branch,
            dirty=True if self.private else (tree != head.tree or scan.any_untracked),
            excluded=tuple(excluded) + tuple(self._submodule_notes()),
            private=self.private,
            git_dir=self.git_dir,
            work_tree=self.work_tree,
            prefix=self.prefix,
            run_id=run_id,
            tree=tree,
            code_dirty=True if self.private else tree != head.tree,
        )

    def _write_tree(
        self, git: GitAccess, path_filter: PathFilter, max_file_bytes: int
    ) -> tuple[UntrackedScan, str]:
        """Builds the snapshot's tree in a temporary index; returns the scan and tree id."""
        with tempfile.TemporaryDirectory(prefix="workbench-snapshot-") as tmp:
            index = Path(tmp) / "index"
            real_index = self.git_dir / "index"
            if real_index.is_file():
                # A copy keeps git's stat cache: unchanged files are not re-hashed.
                # copy2 keeps the mtime, which git's racy-entry check relies on.
                shutil.copy2(real_index, index)
            with git.using_index(index):
                # One read-only pass lists the changed tracked files (by git's stat
                # cache) and the untracked ones; a single update-index then records
                # both. In the private repository every file counts as untracked: its
                # index is only a stat cache, so the scan looks through an empty index.
                scan = scan_untracked(
                    git,
                    self.work_tree,
                    path_filter,
                    index=Path(tmp) / "empty-index" if self.private else None,
                    max_file_bytes=max_file_bytes,
                )
                scan.start_report(git)
                if self.private:
                    _sync_private_index(git, index, scan.included)
                else:
                    _update(git, scan.changed + scan.included)
                tree = git.out(["write-tree"])
            if self.private:
                # The private index is ours: keep it as the next snapshot's stat cache.
                fd, staged = tempfile.mkstemp(prefix="index.workbench-", dir=self.git_dir)
                os.close(fd)
                try:
                    shutil.copy2(index, staged)
                    os.replace(staged, real_index)
                except BaseException:
                    os.unlink(staged)
                    raise
        return scan, tree

    def _finish_head_lookup(self, lookup: Started | None) -> _Head:
        """HEAD's commit and tree (None when there are no commits) and the branch."""
        if lookup is None:
            return _Head(None, None, None)
        found: list[str | None] = []
        for line in os.fsdecode(lookup.wait().stdout).splitlines():
            fields = line.split()  # "<id> <type> <size>", or "<name> missing"
            known = len(fields) == 3 and fields[1] in ("commit", "tree")
            found.append(fields[0] if known else None)
        commit, tree = (found + [None, None])[:2]
        try:
            text = (self.git_dir / "HEAD").read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        branch = text[len("ref: refs/heads/") :] if text.startswith("ref: refs/heads/") else None
        return _Head(commit, tree if commit else None, branch)

    def _state_rel(self) -> str | None:
        try:
            rel = self.state_dir.resolve().relative_to(self.work_tree.resolve())
        except ValueError:
            return None
        text = rel.as_posix()
        return None if text in ("", ".") else text

    def _ensure_private(self) -> None:
        """Creates the private repository, atomically: two launches may race here."""
        if (self.git_dir / "HEAD").is_file():
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".git-init-", dir=self.state_dir))
        try:
            done = run_clean(["init", "--quiet", "--bare", str(building)], self.state_dir)
            if done.returncode != 0:
                raise SnapshotError(f"git init failed: {first_line(done.stderr)}")
            state_rel = self._state_rel()
            if state_rel:
                (building / "info").mkdir(exist_ok=True)
                with open(building / "info" / "exclude", "a", encoding="utf-8") as f:
                    f.write(f"/{state_rel}/\n")
            try:
                os.rename(building, self.git_dir)
            except OSError as exc:
                if not (self.git_dir / "HEAD").is_file():  # not just a lost race
                    raise SnapshotError(
                        f"could not create the private repository {self.git_dir}: {exc.strerror}"
                    ) from None
        finally:
            shutil.rmtree(building, ignore_errors=True)

    def _submodule_notes(self) -> list[tuple[str, str]]:
        gitmodules = self.work_tree / ".gitmodules"
        if self.private or not gitmodules.is_file():
            return []
        from git import GitConfigParser

        notes = []
        with GitConfigParser(str(gitmodules), read_only=True) as config:
            for section in config.sections():
                if section.startswith("submodule ") and config.has_option(section, "path"):
                    path = str(config.get_value(section, "path"))
                    notes.append((path.rstrip("/") + "/", _SUBMODULE_NOTE))
        return notes

    # -- refs -----------------------------------------------------------------------

    def _has_repo(self) -> bool:
        return not self.private or (self.git_dir / "HEAD").is_file()

    def list_refs(self) -> dict[str, str]:
        """Every run that has a snapshot ref.

        Returns:
            ``{run_id: commit}``, sorted by run id.
        """
        if not self._has_repo():
            return {}
        with self._open() as git:
            out = git.out(["for-each-ref", "--format=%(objectname) %(refname)", REF_PREFIX])
        refs = {}
        for line in out.splitlines():
            commit, _, name = line.partition(" ")
            refs[name[len(REF_PREFIX) :]] = commit
        return dict(sorted(refs.items()))

    def delete_ref(self, run_id: str) -> bool:
        """Deletes a run's snapshot ref.

        Returns:
            True if there was one to delete.
        """
        check_run_id(run_id)
        if not self._has_repo():
            return False
        ref = REF_PREFIX + run_id
        with self._open() as git:
            if git.run(["rev-parse", "-q", "--verify", ref], check=False).returncode != 0:
                return False
            git.run(["update-ref", "-d", ref])
        return True

    def add_ref(self, snapshot: Snapshot, run_id: str) -> Snapshot:
        """Names an existing snapshot's commit for another run (the runs of a sweep share one).

        Args:
            snapshot: a snapshot taken in this repository (with or without a ref).
            run_id: the run that gets ``refs/workbench/runs/<run_id>`` pointing at its commit.

        Returns:
            The snapshot as the run's own (``run_id`` set).

        Raises:
            SnapshotError: the run id is invalid or already has a snapshot, or the commit
                is not in the repository.
        """
        check_run_id(run_id)
        with self._open() as git:
            _create_ref(git, run_id, snapshot.commit)
        return replace(snapshot, run_id=run_id)

    def gc(self, keep: set[str] | frozenset[str]) -> list[str]:
        """Deletes the snapshot refs of every run not in ``keep``.

        The commits become unreachable; git's own ``git gc`` prunes them later (after
        its usual grace period, two weeks by default).

        Args:
            keep: run ids whose snapshots stay.

        Returns:
            The run ids whose refs were deleted, sorted.
        """
        doomed = {run: commit for run, commit in self.list_refs().items() if run not in keep}
        if doomed:
            # One transaction; each ref is deleted only if it still names that commit.
            lines = "".join(f"delete {REF_PREFIX}{run}\0{sha}\0" for run, sha in doomed.items())
            with self._open() as git:
                git.run(["update-ref", "--stdin", "-z"], input=lines.encode())
        return sorted(doomed)

    def resolve(self, what: Snapshot | str) -> str:
        """The commit id for a Snapshot, a run id with a snapshot ref, or a revision.

        Raises:
            SnapshotError: nothing by that name is in the repository.
        """
        if isinstance(what, Snapshot):
            return what.commit
        if not self._has_repo():
            raise SnapshotError(f"no snapshot named {what!r}: nothing has been snapshotted yet")
        with self._open() as git:
            for candidate in (REF_PREFIX + what, what):
                if candidate.startswith("-"):
                    continue
                done = git.run(
                    ["rev-parse", "-q", "--verify", f"{candidate}^{{commit}}"], check=False
                )
                if done.returncode == 0:
                    return os.fsdecode(done.stdout).strip()
        raise SnapshotError(f"no snapshot or commit named {what!r}")

    # -- reading snapshots ----------------------------------------------------------

    def materialise(
        self, what: Snapshot | str, dest: Path | str, prefix: str | None = None
    ) -> Path:
        """Writes a snapshot's files to a new or empty folder (a run's ``code/``).

        Args:
            what: a Snapshot, a run id with a snapshot ref, or a commit.
            dest: the folder to write.
            prefix: the repository folder to write, stripped; None means the
                project folder (this repository's ``prefix``), ``""`` the whole tree.

        Returns:
            ``dest``.

        Raises:
            SnapshotError: ``dest`` holds files or the snapshot is unknown.
        """
        if prefix is None:
            prefix = what.prefix if isinstance(what, Snapshot) else self.prefix
        return materialise(self.resolve(what), self.git_dir, dest, prefix)

    def checkout(self, what: Snapshot | str, dest: Path | str, prefix: str | None = None) -> Path:
        """Writes a run's code to a new or empty folder (``workbench checkout RUN DIR``).

        The same as :meth:`materialise`.
        """
        return self.materialise(what, dest, prefix)

    def diff(
        self,
        a: Snapshot | str,
        b: Snapshot | str | None = None,
        *,
        stat: bool = False,
        color: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        exclude: Sequence[str] = (),
    ) -> str:
        """The code diff from snapshot ``a`` to ``b``, or to the working tree.

        Args:
            a: a Snapshot, a run id with a snapshot ref, or a commit.
            b: the same, or None for the working tree as a run launched now would
                record it (a fresh snapshot without a ref, same guards).
            stat: a ``--stat`` summary instead of the patch.
            color: ANSI colours.
            max_file_bytes: the size guard for the working-tree snapshot.
            exclude: the exclude patterns for the working-tree snapshot.

        Returns:
            The diff text (empty when there is no difference).

        Raises:
            SnapshotError: a snapshot is unknown, or git failed.
        """
        left = self.resolve(a)
        if b is None:
            right = self.take(None, max_file_bytes=max_file_bytes, exclude=exclude).commit
        else:
            right = self.resolve(b)
        return diff_commits(
            self.git_dir, left, right, stat=stat, color=color, work_tree=self.work_tree
        )


def _start_head_lookup(git: GitAccess) -> Started:
    return git.start(["cat-file", "--batch-check"], input=b"HEAD^{commit}\nHEAD^{tree}\n")


def _update(git: GitAccess, paths: Sequence[str]) -> None:
    """Brings ``paths`` in the index up to date with the files: adds, updates, removes."""
    # update-index takes paths as they are: `git add` with a thousand pathspecs
    # matches every one against every file it walks, and is ten times slower.
    if not paths:
        return
    git.run(
        ["-c", "core.splitIndex=false", "update-index", "--add", "--remove", "--replace", "-z",
         "--stdin"],
        input=b"".join(os.fsencode(p) + b"\0" for p in paths),
    )


def _sync_private_index(git: GitAccess, index: Path, included: list[str]) -> None:
    """Makes the private index hold exactly ``included`` (every file is untracked).

    The index kept in the private repository is only a stat cache: files that are no
    longer on disk or are now left out are dropped from it.
    """
    if index.exists():
        listed = git.run(["ls-files", "-z"])
        keep = set(included)
        stale = [p for p in os.fsdecode(listed.stdout).split("\0") if p and p not in keep]
        if stale:
            git.run(
                ["update-index", "--force-remove", "-z", "--stdin"],
                input=b"".join(os.fsencode(p) + b"\0" for p in stale),
            )
    if included:
        _update(git, included)
    elif not index.exists():
        git.run(["read-tree", "--empty"])


def _create_ref(git: GitAccess, run_id: str, commit: str) -> None:
    """Stores ``commit`` as the run's ref; refuses (atomically) if the ref exists."""
    ref = REF_PREFIX + run_id
    done = git.run(
        ["update-ref", "--stdin", "-z"], input=f"create {ref}\0{commit}\0".encode(), check=False
    )
    if done.returncode != 0:
        if git.run(["rev-parse", "-q", "--verify", ref], check=False).returncode == 0:
            raise SnapshotError(f"run {run_id} already has a snapshot")
        raise SnapshotError(f"could not store {ref}: {first_line(done.stderr)}")
