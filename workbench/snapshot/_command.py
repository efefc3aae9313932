"""Running git: one place for the environment, the error messages and the timing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench.snapshot.model import SnapshotError

__all__ = ["GitProcess", "GitRunner", "first_line", "git_environment", "run_git"]

# Variables that would point git at another repository or index than the one we name.
_LOCATING_VARIABLES = (
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

_MISSING_GIT = "git was not found on PATH; install git to record each run's code"


def git_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git command of this package runs in.

    Args:
        base: the environment to start from (``os.environ`` when None).

    Returns:
        A copy with repository-locating variables removed, prompts off, optional
        locks off (so git never rewrites the user's index in passing) and a fixed
        identity, so that a machine without ``user.name`` can still commit.
    """
    env = dict(os.environ if base is None else base)
    for name in _LOCATING_VARIABLES:
        env.pop(name, None)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",
        GIT_AUTHOR_NAME="workbench",
        GIT_AUTHOR_EMAIL="workbench@localhost",
        GIT_COMMITTER_NAME="workbench",
        GIT_COMMITTER_EMAIL="workbench@localhost",
        GIT_PAGER="cat",
    )
    return env


def first_line(stderr: bytes) -> str:
    """The first meaningful line of git's stderr, without ``fatal:``/``error:``."""
    for line in os.fsdecode(stderr).splitlines():
        line = line.strip()
        if line and not line.startswith("hint:"):
            for lead in ("fatal: ", "error: "):
                if line.startswith(lead):
                    line = line[len(lead) :]
            return line
    return "no message"


class GitRunner:
    """Runs git against one repository (a git dir and, optionally, a work tree).

    Args:
        git_dir: the repository's git dir.
        work_tree: the work tree, or None for commands that only read objects.
    """

    def __init__(self, git_dir: Path, work_tree: Path | None = None) -> None:
        self.git_dir = git_dir
        self.work_tree = work_tree
        self._env = git_environment()

    def run(
        self,
        args: Sequence[str],
        *,
        input: bytes | None = None,
        index: Path | None = None,
        check: bool = True,
        cwd: Path | None = None,
        literal: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        """Runs ``git <args>`` and returns the completed process (stdout as bytes).

        Args:
            args: the git sub-command and its arguments.
            input: bytes fed to the command's stdin.
            index: an index file to use instead of the repository's own.
            check: raise SnapshotError when git exits with a non-zero status.
            cwd: where to run it (the work tree when None and there is one).
            literal: treat every pathspec literally (paths may hold ``*`` or ``:``).

        Raises:
            SnapshotError: git is not installed, or (with ``check``) git failed.
        """
        return self.start(args, index=index, cwd=cwd, literal=literal).wait(
            input=input, check=check
        )

    def start(
        self,
        args: Sequence[str],
        *,
        index: Path | None = None,
        cwd: Path | None = None,
        literal: bool = False,
        input: bytes | None = None,
    ) -> GitProcess:
        """Starts ``git <args>`` without waiting, so that independent calls overlap.

        Arguments are as for :meth:`run`; ``input`` (a few bytes: it must fit in the
        pipe) is written at once. Call ``wait()`` on the result.
        """
        command = ["git", f"--git-dir={self.git_dir}"]
        if self.work_tree is not None:
            command.append(f"--work-tree={self.work_tree}")
        if literal:
            command.append("--literal-pathspecs")
        command.extend(args)
        env = self._env
        if index is not None:
            env = {**env, "GIT_INDEX_FILE": str(index)}
        process = GitProcess(command, env=env, cwd=cwd or self.work_tree, label=_label(args))
        if input is not None:
            process.feed(input)
        return process

    def out(self, args: Sequence[str], **kwargs: object) -> str:
        """Runs ``git <args>`` and returns its stdout, decoded and stripped."""
        return os.fsdecode(self.run(args, **kwargs).stdout).strip()  # type: ignore[arg-type]


def _label(args: Sequence[str]) -> str:
    """The sub-command's name in an argument list (``-c key=value`` skipped)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "-c":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return ""


class GitProcess:
    """A started git command; :meth:`wait` collects it.

    Args:
        command: the command line, starting with ``"git"``.
        env: its environment.
        cwd: its working directory.
        label: the sub-command's name, for error messages.

    Raises:
        SnapshotError: git is not installed, or ``cwd`` does not exist.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None,
        label: str = "",
    ) -> None:
        self.label = label
        try:
            self._proc = subprocess.Popen(
                list(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env),
                cwd=cwd,
            )
        except FileNotFoundError:
            if shutil.which("git", path=env.get("PATH")) is None:
                raise SnapshotError(_MISSING_GIT) from None
            raise SnapshotError(f"folder not found: {cwd}") from None
        except OSError as exc:
            raise SnapshotError(f"could not run git: {exc.strerror or exc}") from None
        self._command = list(command)

    def feed(self, data: bytes) -> None:
        """Writes ``data`` (small: it must fit in the pipe) to stdin and closes it."""
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            stdin.close()
        except BrokenPipeError:
            pass
        self._proc.stdin = None

    def wait(
        self, *, input: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Feeds ``input``, waits, and returns the completed process.

        Raises:
            SnapshotError: (with ``check``) git exited with a non-zero status.
        """
        stdout, stderr = self._proc.communicate(input)
        done = subprocess.CompletedProcess(self._command, self._proc.returncode, stdout, stderr)
        if check and done.returncode != 0:
            name = f"git {self.label}" if self.label else "git"
            raise SnapshotError(f"{name} failed: {first_line(stderr)}")
        return done


def run_git(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    cwd: Path | None = None,
    label: str = "",
) -> subprocess.CompletedProcess[bytes]:
    """Runs a full git command line (``["git", ...]``) with clear one-line errors.

    Args:
        command: the command line, starting with ``"git"``.
        env: the environment (``git_environment()`` when None).
        input: bytes fed to stdin.
        check: raise SnapshotError when git exits with a non-zero status.
        cwd: the working directory.
        label: the sub-command's name, for the error message.

    Returns:
        The completed process, stdout and stderr as bytes.

    Raises:
        SnapshotError: git is not installed, or (with ``check``) git failed.
    """
    process = GitProcess(
        command, env=env if env is not None else git_environment(), cwd=cwd, label=label
    )
    return process.wait(input=input, check=check)
