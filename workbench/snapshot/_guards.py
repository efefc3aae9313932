"""Which untracked files go into a snapshot, found without walking heavy folders."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.snapshot._command import GitRunner

__all__ = [
    "HEAVY_DIRS",
    "HEAVY_SUFFIXES",
    "PathFilter",
    "UntrackedScan",
    "scan_untracked",
]

#: Folder names whose untracked contents are never snapshotted, at any depth.
HEAVY_DIRS = frozenset(
    {
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".workbench",
        "data",
        "datasets",
        "checkpoints",
        "wandb",
        "mlruns",
        "lightning_logs",
        ".ipynb_checkpoints",
    }
)

#: Suffixes of untracked files that are model weights, not code.
HEAVY_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")

MIB = 1024 * 1024


def _glob_to_regex(glob: str) -> str:
    """Translates a gitignore-style glob (``*``, ``?``, ``[...]``, ``**``) to a regex."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = glob.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Pattern:
    text: str
    regex: re.Pattern[str]
    anchored: bool
    dir_only: bool


def _compile(pattern: str) -> _Pattern | None:
    text = pattern.strip()
    if not text or text.startswith("#"):
        return None
    body = text
    dir_only = body.endswith("/")
    body = body.rstrip("/")
    anchored = "/" in body
    body = body.lstrip("/")
    if not body:
        return None
    return _Pattern(text, re.compile(_glob_to_regex(body) + r"\Z"), anchored, dir_only)


@dataclass
class PathFilter:
    """Decides whether an untracked path stays out of a snapshot, and why.

    ``exclude`` patterns follow ``.gitignore``'s rules, relative to the project
    folder: a pattern without ``/`` matches a file or folder name at any depth
    (``*.csv``, ``outputs``), one with ``/`` matches from the project folder
    (``results/*.json``), and a trailing ``/`` matches folders only.

    Args:
        exclude: the user's patterns (``[snapshot] exclude`` in workbench.toml).
        prefix: the project's folder inside the work tree (``""`` at the top).
        state_rel: the state folder relative to the work tree, if inside it.
    """

    exclude: Sequence[str] = ()
    prefix: str = ""
    state_rel: str | None = None
    _patterns: list[_Pattern] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._patterns = [p for p in map(_compile, self.exclude) if p is not None]

    def git_excludes(self) -> list[str]:
        """``--exclude`` patterns that make git prune what this filter leaves out."""
        out = [f"{name}/" for name in sorted(HEAVY_DIRS)]
        out += [f"*{suffix}" for suffix in HEAVY_SUFFIXES]
        if self.state_rel:
            out.append(f"/{self.state_rel}/")
        for p in self._patterns:
            body = p.text.rstrip("/").lstrip("/")
            trail = "/" if p.dir_only else ""
            if p.anchored:
                lead = f"/{self.prefix}/" if self.prefix else "/"
                out.append(f"{lead}{body}{trail}")
            else:
                out.append(f"{body}{trail}")
        return out

    def check(self, path: str, is_dir: bool = False) -> tuple[str, str] | None:
        """Returns ``(reported path, reason)`` when ``path`` is left out, else None.

        Args:
            path: a path relative to the work tree's top, POSIX separators; a
                folder may end in ``/``.
            is_dir: the path is a folder (also implied by a trailing ``/``).
        """
        is_dir = is_dir or path.endswith("/")
        parts = path.rstrip("/").split("/")
        if self.state_rel:
            state_parts = self.state_rel.split("/")
            if parts[: len(state_parts)] == state_parts:
                return self.state_rel + "/", "workbench state folder"
        dir_count = len(parts) if is_dir else len(parts) - 1
        for i in range(dir_count):
            if parts[i] in HEAVY_DIRS:
                return "/".join(parts[: i + 1]) + "/", f"heavy folder ({parts[i]})"
        if not is_dir and parts[-1].lower().endswith(HEAVY_SUFFIXES):
            return path, "model weights file"
        if self._patterns:
            hit = self._match_user(parts, is_dir)
            if hit is not None:
                return hit
        return None

    def _match_user(self, parts: list[str], is_dir: bool) -> tuple[str, str] | None:
        prefix_parts = self.prefix.split("/") if self.prefix else []
        inside = parts[: len(prefix_parts)] == prefix_parts
        for depth in range(1, len(parts) + 1):
            name_is_dir = is_dir or depth < len(parts)
            sub = parts[:depth]
            for p in self._patterns:
                if p.dir_only and not name_is_dir:
                    continue
                if p.anchored:
                    if not inside or depth <= len(prefix_parts):
                        continue
                    candidate = "/".join(sub[len(prefix_parts) :])
                else:
                    candidate = sub[-1]
                if p.regex.match(candidate):
                    shown = "/".join(sub) + ("/" if name_is_dir else "")
                    return shown, f"matches exclude pattern {p.text!r}"
        return None


@dataclass
class UntrackedScan:
    """The result of looking for untracked files.

    Attributes:
        included: files to add (paths relative to the work tree's top).
        excluded: ``(path, reason)`` pairs, in the order found.
        any_untracked: whether any untracked, not-ignored path exists at all.
    """

    included: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)
    any_untracked: bool = False


def _split(stdout: bytes) -> list[str]:
    return [os.fsdecode(item) for item in stdout.split(b"\0") if item]


def scan_untracked(
    git: GitRunner,
    work_tree: Path,
    path_filter: PathFilter,
    *,
    index: Path,
    max_file_bytes: int,
) -> UntrackedScan:
    """Lists the untracked, not-ignored files that belong in a snapshot.

    Git is first asked with ``--directory``, so a wholly untracked folder is one
    line and is not walked; folders that are left out (heavy ones, the state folder,
    ``exclude`` patterns, nested repositories) are never entered. The folders that
    pass are then listed file by file with the same rules given to git as
    ``--exclude`` patterns, so heavy folders nested in them are pruned too.

    Args:
        git: runs git on the repository (with its work tree).
        work_tree: the work tree's top.
        path_filter: the rules for leaving paths out.
        index: the index file that says what is tracked.
        max_file_bytes: untracked files larger than this are left out.

    Returns:
        The files to add and the paths left out, with reasons.
    """
    scan = UntrackedScan()
    reported: set[str] = set()

    def leave_out(path: str, reason: str) -> None:
        if path not in reported:
            reported.add(path)
            scan.excluded.append((path, reason))

    top = git.run(
        ["ls-files", "--others", "--exclude-standard", "--directory", "-z"], index=index
    )
    candidates: list[str] = []
    folders: list[str] = []
    skip = "\0"  # the folder last left out: git lists paths in walk order
    for path in _split(top.stdout):
        scan.any_untracked = True
        if path.startswith(skip):
            continue  # e.g. the 100,000 untracked files of a tracked data/ folder
        hit = path_filter.check(path)
        if hit is not None:
            leave_out(*hit)
            if hit[0].endswith("/"):
                skip = hit[0]
        elif path.endswith("/"):
            if os.path.lexists(work_tree / path / ".git"):
                leave_out(path, "nested git repository")
            else:
                folders.append(path)
        else:
            candidates.append(path)

    if folders:
        x_args = [f"--exclude={pattern}" for pattern in path_filter.git_excludes()]
        # Both listings walk the same new folders; run them side by side.
        inner = git.start(
            ["ls-files", "--others", "--exclude-standard", "-z", *x_args, "--", *folders],
            index=index,
            literal=True,
        )
        pruned = git.start(
            [
                "ls-files",
                "--others",
                "--ignored",
                "--directory",
                "--exclude-standard",
                "-z",
                *x_args,
                "--",
                *folders,
            ],
            index=index,
            literal=True,
        )
        try:
            inner_out = inner.wait().stdout
        finally:
            pruned_out = pruned.wait().stdout
        for path in _split(inner_out):
            if path.endswith("/"):
                leave_out(path, "nested git repository")
                continue
            hit = path_filter.check(path)
            if hit is not None:
                leave_out(*hit)
            else:
                candidates.append(path)
        _report_pruned(git, path_filter, _split(pruned_out), leave_out)

    top_dir = os.fspath(work_tree)  # os.path, not pathlib: a thousand paths add up
    for path in candidates:
        try:
            size = os.lstat(os.path.join(top_dir, path)).st_size
        except OSError:
            continue  # gone since git listed it
        if size > max_file_bytes:
            leave_out(path, f"larger than {_mib(max_file_bytes)}")
        else:
            scan.included.append(path)
    return scan


def _report_pruned(
    git: GitRunner,
    path_filter: PathFilter,
    ignored_paths: list[str],
    leave_out: Callable[[str, str], None],
) -> None:
    """Names the heavy folders that git pruned inside new untracked folders.

    ``ignored_paths`` are what git ignored there (by our rules or the user's);
    paths the user's own ignore rules already ignore are not reported, just as at
    the top level.
    """
    hits: dict[str, tuple[str, str]] = {}
    for path in ignored_paths:
        hit = path_filter.check(path)
        if hit is not None:
            hits.setdefault(path, hit)
    if not hits:
        return
    ignored = git.run(
        ["check-ignore", "--no-index", "-z", "--stdin"],
        input=b"".join(os.fsencode(p.rstrip("/")) + b"\0" for p in hits),
        check=False,
    )
    by_user = set(_split(ignored.stdout))
    for path, hit in hits.items():
        if path.rstrip("/") not in by_user:
            leave_out(*hit)


def _mib(n: int) -> str:
    return f"{n / MIB:g} MiB" if n >= MIB else f"{n} bytes"
