"""Which untracked files go into a snapshot, found without walking heavy folders."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.snapshot._access import GitAccess, Started

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


def _either_case(c: str) -> str:
    return f"[{c.lower()}{c.upper()}]" if c.isalpha() else c


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
        # Python's check ignores case for these suffixes; so must git (".PT").
        out += ["*" + "".join(_either_case(c) for c in suffix) for suffix in HEAVY_SUFFIXES]
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
        included: untracked files to add (paths relative to the work tree's top).
        changed: tracked files whose stat data or content differ from the index,
            or that are gone: update-index brings them up to date.
        excluded: ``(path, reason)`` pairs known so far (more may come from
            :meth:`finish_report`).
        any_untracked: whether an untracked, not-ignored file is included.
    """

    included: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)
    any_untracked: bool = False
    _hits: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    _check: Started | None = field(default=None, repr=False)

    def start_report(self, git: GitAccess) -> None:
        """Starts asking git which pruned paths the user's own rules ignore anyway.

        Those are not reported, so that the report holds only what our guards left
        out. The answer only changes the report: callers overlap it with other work.
        """
        if self._hits and self._check is None:
            self._check = git.start(
                ["check-ignore", "--no-index", "-z", "--stdin"],
                input=b"".join(os.fsencode(p.rstrip("/")) + b"\0" for p in self._hits),
            )

    def finish_report(self) -> list[tuple[str, str]]:
        """Waits for :meth:`start_report` and returns every ``(path, reason)`` left out."""
        if self._check is not None:
            by_user = set(_split(self._check.wait(check=False).stdout))
            self._check = None
            for path, hit in self._hits.items():
                if path.rstrip("/") not in by_user and hit not in self.excluded:
                    self.excluded.append(hit)
                    self.any_untracked = True
            self._hits = {}
        return self.excluded


def _split(stdout: bytes) -> list[str]:
    return [os.fsdecode(item) for item in stdout.split(b"\0") if item]


def scan_untracked(
    git: GitAccess,
    work_tree: Path,
    path_filter: PathFilter,
    *,
    index: Path | None,
    max_file_bytes: int,
) -> UntrackedScan:
    """Lists the changed tracked files and the untracked files for a snapshot.

    Two listings run side by side, both with our rules given to git as
    ``--exclude`` patterns so that it never walks a heavy or excluded folder:

    * the changed tracked files, and the untracked files that pass (nested
      repositories show as ``dir/``);
    * with ``--ignored --directory``, what was ignored, a pruned folder as one
      line: the paths our rules match are the report, once :meth:`UntrackedScan.
      start_report` has dropped those the user's own rules ignore anyway.

    Args:
        git: runs git on the repository (with its work tree).
        work_tree: the work tree's top.
        path_filter: the rules for leaving paths out.
        index: the index file that says what is tracked (None: the one ``git`` uses).
        max_file_bytes: untracked files larger than this are left out.

    Returns:
        The files to add and the paths left out, with reasons.
    """
    x_args = [f"--exclude={pattern}" for pattern in path_filter.git_excludes()]
    # --modified/--deleted with -t: the changed tracked files come from the same
    # process ("C"/"R" lines; excludes never hide tracked files), untracked as "?".
    listing = git.start(
        ["ls-files", "--others", "--modified", "--deleted", "-t", "--exclude-standard", "-z"]
        + x_args,
        index=index,
    )
    ignored = git.start(
        ["ls-files", "--others", "--ignored", "--directory", "--exclude-standard", "-z", *x_args],
        index=index,
    )
    try:
        listed = listing.wait().stdout
    finally:
        pruned = ignored.wait().stdout

    scan = UntrackedScan()
    candidates: list[str] = []
    changed: dict[str, None] = {}
    for entry in _split(listed):
        tag, _, path = entry.partition(" ")
        if tag != "?":
            changed[path] = None  # modified or deleted (maybe both): once is enough
            continue
        scan.any_untracked = True
        if path.endswith("/"):
            scan.excluded.append((path, "nested git repository"))
            continue
        # Git pruned by our rules already; the user's patterns are checked again
        # in case git's reading of one differs from ours.
        hit = path_filter.check(path) if path_filter.exclude else None
        if hit is not None:
            scan.excluded.append(hit)
        else:
            candidates.append(path)

    top = os.open(work_tree, os.O_RDONLY)  # lstat relative to it: no path joining
    try:
        for path in candidates:
            try:
                size = os.lstat(path, dir_fd=top).st_size
            except OSError:
                continue  # gone since git listed it
            if size > max_file_bytes:
                scan.excluded.append((path, f"larger than {_mib(max_file_bytes)}"))
            else:
                scan.included.append(path)
    finally:
        os.close(top)

    scan.changed = list(changed)
    skip = "\0"  # the folder last matched: git lists paths in walk order
    for path in _split(pruned):
        if path.startswith(skip):
            continue  # e.g. the 100,000 untracked files of a tracked data/ folder
        hit = path_filter.check(path)
        if hit is not None:
            scan._hits.setdefault(hit[0], hit)
            if hit[0].endswith("/"):
                skip = hit[0]
    return scan


def _mib(n: int) -> str:
    return f"{n / MIB:g} MiB" if n >= MIB else f"{n} bytes"
