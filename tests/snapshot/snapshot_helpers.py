"""Helpers for the snapshot tests (a unique module name: tests/ has no __init__)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["GIT_ENV", "git", "user_state", "write"]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "tester",
    "GIT_AUTHOR_EMAIL": "tester@example.com",
    "GIT_COMMITTER_NAME": "tester",
    "GIT_COMMITTER_EMAIL": "tester@example.com",
}


def git(cwd: Path, *args: str, input: str | None = None) -> str:
    """Runs git in ``cwd`` as the test's own user and returns stdout."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def write(path: Path, text: str = "x\n") -> Path:
    """Writes ``text`` to ``path``, making its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def user_state(repo: Path) -> dict[str, object]:
    """Everything a snapshot must leave exactly as it was."""
    # The index is read first, and status is told not to refresh it in passing.
    return {
        "index": (repo / ".git" / "index").read_bytes(),
        "status": git(repo, "--no-optional-locks", "status", "--porcelain=v1", "-uall"),
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": (repo / ".git" / "HEAD").read_text(),
        "stash": git(repo, "stash", "list"),
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        "stash_ref": git(repo, "for-each-ref", "--format=%(objectname)", "refs/stash"),
    }
