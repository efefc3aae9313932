"""Repository access through GitPython: the environment guard, one wrapper per operation.

Every git command of this package runs through a GitPython ``Git`` command wrapper
that an operation opens (:class:`GitAccess`) and closes when it is done; nothing of
GitPython outlives the operation (its docs warn of leaks in long-running processes).
GitPython is imported on first use, never by ``import workbench.snapshot``: it costs
tens of milliseconds and runs ``git version``.

The guard. GitPython starts each command from a copy of ``os.environ`` and can add or
replace variables but never remove one, so the guard does not clear the variables that
would point git at another repository: it gives every one of them this repository's own
value (its git dir, work tree, common dir and index; no namespace; default pathspec
rules). Two commands need them absent, discovery and ``git init --bare``: see
:func:`run_clean`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from workbench.snapshot.model import SnapshotError

__all__ = [
    "LOCATING_VARIABLES",
    "Done",
    "GitAccess",
    "Location",
    "Started",
    "common_dir_of",
    "discover",
    "first_line",
    "guard",
    "run_clean",
]

#: Variables that would point git at another repository, index or pathspec mode than
#: the one we name.
LOCATING_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)

# Prompts off, optional locks off (git never rewrites the user's index in passing), and
# a fixed identity, so that a machine without user.name can still commit.
_FIXED = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_AUTHOR_NAME": "workbench",
    "GIT_AUTHOR_EMAIL": "workbench@localhost",
    "GIT_COMMITTER_NAME": "workbench",
    "GIT_COMMITTER_EMAIL": "workbench@localhost",
    "GIT_PAGER": "cat",
}

_MISSING_GIT = "git was not found on PATH; install git to record each run's code"


def guard(git_dir: Path, work_tree: Path, index: Path) -> dict[str, str]:
    """The variables every command on a known repository runs with (over ``os.environ``).

    Args:
        git_dir: the repository's git dir.
        work_tree: its work tree; for commands that only read objects, any existing
            folder (the git dir itself): they never look at it.
        index: the index file git may read and write.

    Returns:
        A value for each of :data:`LOCATING_VARIABLES`, naming this repository, plus
        the fixed settings (no prompts, no optional locks, workbench's identity).
    """
    return {
        **_FIXED,
        "GIT_DIR": str(git_dir),
        "GIT_WORK_TREE": str(work_tree),
        "GIT_INDEX_FILE": str(index),
        "GIT_COMMON_DIR": str(common_dir_of(git_dir)),
        "GIT_PREFIX": "",
        "GIT_NAMESPACE": "",  # empty: no namespace
        "GIT_LITERAL_PATHSPECS": "0",
        "GIT_GLOB_PATHSPECS": "0",
        "GIT_NOGLOB_PATHSPECS": "0",
        "GIT_ICASE_PATHSPECS": "0",
    }


def common_dir_of(git_dir: Path) -> Path:
    """The common dir git itself would use for ``git_dir`` (a linked worktree's points
    at the main repository's, through its ``commondir`` file)."""
    try:
        pointer = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    return (git_dir / pointer).resolve() if pointer else git_dir


def first_line(stderr: bytes | str) -> str:
    """The first meaningful line of git's stderr, without ``fatal:``/``error:``."""
    text = stderr if isinstance(stderr, str) else os.fsdecode(stderr)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("hint:"):
            for lead in ("fatal: ", "error: "):
                if line.startswith(lead):
                    line = line[len(lead) :]
            return line
    return "no message"


def _gitpython() -> ModuleType:
    """GitPython, imported on first use (its import runs ``git version``)."""
    try:
        import git
    except ImportError as exc:
        if shutil.which("git") is None:
            raise SnapshotError(_MISSING_GIT) from None
        raise SnapshotError(f"GitPython could not be loaded: {first_line(str(exc))}") from None
    return git


def _not_started(exc: BaseException) -> SnapshotError:
    if shutil.which("git", path=os.environ.get("PATH")) is None:
        return SnapshotError(_MISSING_GIT)
    return SnapshotError(f"could not run git: {exc}")


@dataclass(frozen=True)
class Done:
    """A finished git command: its exit status and output (bytes)."""

    returncode: int
    stdout: bytes
    stderr: bytes


class Started:
    """A git command started through GitPython; :meth:`wait` collects it.

    Args:
        process: what ``Git.execute(..., as_process=True)`` returned.
        label: the sub-command's name, for error messages.
        input: bytes for stdin, fed by :meth:`wait` (None: stdin is empty).
    """

    def __init__(self, process: Any, label: str, input: bytes | None = None) -> None:
        self._process = process
        self.label = label
        self._input = input
        self._done: Done | None = None

    def feed(self) -> None:
        """Writes the input now and closes stdin (it must fit in the pipe)."""
        proc = self._process.proc
        data, self._input = self._input, None
        try:
            proc.stdin.write(data or b"")
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.stdin = None

    def wait(self, *, check: bool = True) -> Done:
        """Waits and returns the result (once; later calls return it again).

        Raises:
            SnapshotError: (with ``check``) git exited with a non-zero status.
        """
        if self._done is None:
            proc = self._process.proc
            data, self._input = self._input, None
            stdout, stderr = proc.communicate(data)
            self._done = Done(proc.returncode, stdout or b"", stderr or b"")
        if check and self._done.returncode != 0:
            name = f"git {self.label}" if self.label else "git"
            raise SnapshotError(f"{name} failed: {first_line(self._done.stderr)}")
        return self._done

    def stop(self) -> None:
        """Ends the command if it is still running, and reaps it."""
        if self._done is None:
            if self._process.proc.poll() is None:
                self._process.proc.kill()
            self.wait(check=False)


#: Input up to this size is written as a command starts (it fits in a pipe's buffer).
_FEED_AT_ONCE = 16 * 1024


class GitAccess:
    """GitPython's command wrapper for one operation on one repository, under the guard.

    Use it as a context manager: on exit every command it started has ended, and
    GitPython's cached processes are closed.

    Args:
        cwd: where commands run (the work tree's top, or the git dir).
        env: variables over ``os.environ`` (:func:`guard`).

    Raises:
        SnapshotError: GitPython cannot be loaded (git is missing, for one).
    """

    def __init__(self, cwd: Path, env: Mapping[str, str]) -> None:
        git = _gitpython()
        self._git = git.Git(str(cwd))
        self._git.update_environment(**env)
        self._exe = self._git.GIT_PYTHON_GIT_EXECUTABLE or "git"
        self._not_found = git.GitCommandNotFound
        self._started: list[Started] = []

    def __enter__(self) -> GitAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Ends what is still running and releases GitPython's cached processes."""
        started, self._started = self._started, []
        for process in started:
            process.stop()
        self._git.clear_cache()

    @contextmanager
    def using_index(self, index: Path) -> Iterator[None]:
        """Commands started inside the block use ``index`` (a temporary index)."""
        with self._git.custom_environment(GIT_INDEX_FILE=str(index)):
            yield

    def start(
        self,
        args: Sequence[str],
        *,
        index: Path | None = None,
        input: bytes | None = None,
        literal: bool = False,
    ) -> Started:
        """Starts ``git <args>`` without waiting, so that independent calls overlap.

        Args:
            args: the git sub-command and its arguments.
            index: an index file for this command only.
            input: bytes for stdin; small input is written at once, the rest when
                :meth:`Started.wait` is called.
            literal: treat every pathspec literally (paths may hold ``*`` or ``:``).

        Raises:
            SnapshotError: git is not installed.
        """
        command = [self._exe, *(["--literal-pathspecs"] if literal else []), *args]
        try:
            process = self._git.execute(
                command,
                as_process=True,
                istream=subprocess.PIPE if input is not None else None,
                env={"GIT_INDEX_FILE": str(index)} if index is not None else None,
            )
        except self._not_found as exc:
            raise _not_started(exc) from None
        started = Started(process, _label(args), input)
        self._started.append(started)
        if input is not None and len(input) <= _FEED_AT_ONCE:
            started.feed()
        return started

    def run(
        self,
        args: Sequence[str],
        *,
        index: Path | None = None,
        input: bytes | None = None,
        check: bool = True,
        literal: bool = False,
    ) -> Done:
        """Runs ``git <args>`` and returns the result (arguments as for :meth:`start`).

        Raises:
            SnapshotError: git is not installed, or (with ``check``) git failed.
        """
        return self.start(args, index=index, input=input, literal=literal).wait(check=check)

    def out(self, args: Sequence[str], **kwargs: Any) -> str:
        """Runs ``git <args>`` and returns its stdout, decoded and stripped."""
        return os.fsdecode(self.run(args, **kwargs).stdout).strip()


def _label(args: Sequence[str]) -> str:
    """The sub-command's name in an argument list (``-c key=value`` skipped)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-c", "-C"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return ""


def run_clean(args: Sequence[str], cwd: Path) -> Done:
    """Runs a git command that must see none of :data:`LOCATING_VARIABLES`.

    Two commands cannot be guarded by naming the repository, because they only work
    when no repository is named: discovery (git walks up from a folder, and checks the
    repository's owner, only when ``GIT_DIR`` is unset) and ``git init --bare`` (which
    refuses a ``GIT_WORK_TREE``). They run through GitPython when the environment
    holds none of those variables; GitPython cannot remove a variable, so when one is
    set they run as a plain subprocess with the variables removed.

    Raises:
        SnapshotError: git is missing.
    """
    if not any(name in os.environ for name in LOCATING_VARIABLES):
        with GitAccess(cwd, _FIXED) as git:
            return git.run(args, check=False)
    env = {k: v for k, v in os.environ.items() if k not in LOCATING_VARIABLES}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env={**env, **_FIXED}, capture_output=True, check=False
        )
    except OSError as exc:
        raise _not_started(exc) from None
    return Done(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Location:
    """Where git found the repository around a folder."""

    git_dir: Path
    work_tree: Path
    prefix: str


def discover(root: Path) -> Location | None:
    """Finds the repository around ``root`` the way git does (see :func:`run_clean`).

    Returns:
        The repository's git dir, work tree and the folder's place in it, or None when
        the folder is in no repository.

    Raises:
        SnapshotError: git is missing, or refuses the repository (for example, one
            owned by another user).
    """
    done = run_clean(
        ["-C", str(root), "rev-parse", "--absolute-git-dir", "--show-toplevel", "--show-prefix"],
        root,
    )
    lines = os.fsdecode(done.stdout).splitlines()
    if done.returncode == 0 and len(lines) >= 2:
        prefix = lines[2].rstrip("/") if len(lines) > 2 else ""
        return Location(Path(lines[0]), Path(lines[1]), prefix)
    if "not a git repository" in os.fsdecode(done.stderr):
        return None
    raise SnapshotError(f"git cannot read the repository at {root}: {first_line(done.stderr)}")
