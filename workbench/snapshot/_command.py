"""Running git: one place for the environment, the error messages and the timing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench.snapshot.model import SnapshotError

__all__ = ["GitRunner", "git_environment"]

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


def _first_line(stderr: bytes) -> str:
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
        command = ["git", f"--git-dir={self.git_dir}"]
        if self.work_tree is not None:
            command.append(f"--work-tree={self.work_tree}")
        if literal:
            command.append("--literal-pathspecs")
        command.extend(args)
        env = self._env
        if index is not None:
            env = {**env, "GIT_INDEX_FILE": str(index)}
        label = next((a for a in args if not a.startswith("-")), "")
        return run_git(
            command, env=env, input=input, check=check, cwd=cwd or self.work_tree, label=label
        )

    def out(self, args: Sequence[str], **kwargs: object) -> str:
        """Runs ``git <args>`` and returns its stdout, decoded and stripped."""
        return os.fsdecode(self.run(args, **kwargs).stdout).strip()  # type: ignore[arg-type]


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
    try:
        done = subprocess.run(
            list(command),
            input=input,
            capture_output=True,
            env=dict(env) if env is not None else git_environment(),
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        if shutil.which("git", path=(env or os.environ).get("PATH")) is None:
            raise SnapshotError(_MISSING_GIT) from None
        raise SnapshotError(f"folder not found: {cwd}") from None
    if check and done.returncode != 0:
        name = f"git {label}" if label else "git"
        raise SnapshotError(f"{name} failed: {_first_line(done.stderr)}")
    return done
