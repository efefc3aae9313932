"""The project file, ``workbench.toml``: finding it, reading it, checking every key.

```toml
[project]
name = "quickstart"               # default: the folder name
tasks = ["tasks/**/*.py"]         # glob(s) relative to the root; a single string is fine
state_dir = ".workbench"          # run data (index.db, runs/); default ".workbench"

[defaults]                        # launch defaults
device = "auto"                   # auto | cpu | cuda | cuda:N | mps
backend = "single"                # single | ddp
nproc = 1                         # >= 1
precision = "32"                  # "32" | "bf16-mixed" | "16-mixed" (32 accepted too)
deterministic = true              # runs that repeat bit for bit; default: on for CPU runs

[snapshot]
max_file_size_mb = 10             # untracked files larger than this are left out
exclude = []                      # extra glob patterns left out of snapshots

[data]
paths = ["data/", "/datasets/wikitext-2"]  # what runs read: fingerprinted at launch
hash_below_mb = 8                 # files smaller than this are content-hashed

[queue]
max_running = 2                   # runs of the queue at once (default: no project limit)

[sweep]
max_runs = 5000                   # a bigger sweep needs --yes (default 1000)

[scripts.wordlm]                  # a script launched as a run (see workbench.project.scripts)
command = ["python", "scripts/wordlm.py", "--lr", "{lr}"]
[scripts.wordlm.params]
lr = 20.0
```

``[project] python`` is the interpreter a script's ``python`` means (default: the one the
workbench runs under); a relative path is taken from the project folder.

Every key is optional; an empty file is a valid project. Unknown keys are errors, so a typo
never passes silently. ``state_dir`` is either a folder inside the project (given relative
to the root; ``..`` that leaves the root is refused) or an absolute path anywhere (for a
scratch disk); ``~`` is expanded. ``nproc`` is not checked against ``backend``: the
launcher decides what ``nproc > 1`` with the single backend means (an error there).
``[data] paths`` are relative to the root or absolute (``~`` expanded); a path that does
not exist is allowed (the launch warns); the project folder itself, or a folder above it,
is refused. Data paths inside the project are added to the snapshot's ``exclude`` patterns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.project._toml import display_path, find_key_line, load_toml_text, read_text
from workbench.project._values import (
    _boolean,
    _Checker,
    _globs,
    _index_file,
    _max_running,
    _max_runs,
    _patterns,
    _size_mb,
    _state_dir,
    _string,
    _suggest,
)
from workbench.project.errors import ProjectError, ProjectNotFound
from workbench.project.clusters import Cluster, parse_clusters
from workbench.project.scripts import Script, parse_scripts

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "PROJECT_FILE",
    "DataSettings",
    "LaunchDefaults",
    "Project",
    "SnapshotSettings",
    "find_project_root",
    "load_project",
    "normalize_backend",
    "normalize_device",
    "normalize_nproc",
    "normalize_precision",
]

PROJECT_FILE = "workbench.toml"
BACKENDS = ("single", "ddp")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")
_DEVICE = re.compile(r"^(auto|cpu|cuda|mps|cuda:\d+)$")
_MIB = 1024 * 1024

_SECTIONS: dict[str, tuple[str, ...]] = {
    "project": ("name", "tasks", "state_dir", "max_log_size_mb", "python", "index"),
    "defaults": ("device", "backend", "nproc", "precision", "deterministic"),
    "snapshot": ("max_file_size_mb", "exclude"),
    "data": ("paths", "hash_below_mb"),
    "queue": ("max_running",),
    "sweep": ("max_runs",),
    "scripts": (),  # tables named by the user, checked by workbench.project.scripts
    "clusters": (),  # tables named by the user, checked by workbench.project.clusters
}


def normalize_device(value: object) -> str:
    """Check a device string's syntax (not whether the device exists).

    Args:
        value: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (N a whole number) or ``mps``.

    Returns:
        The device string, lower-cased and stripped.

    Raises:
        ValueError: The value is not one of those; the message starts with "must be".
    """
    if isinstance(value, str) and _DEVICE.match(value.strip().lower()):
        return value.strip().lower()
    raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps; got {value!r}")


def normalize_backend(value: object) -> str:
    """Check a backend name.

    Args:
        value: ``single`` or ``ddp``.

    Returns:
        The backend name.

    Raises:
        ValueError: Any other value.
    """
    if isinstance(value, str) and value.strip().lower() in BACKENDS:
        return value.strip().lower()
    raise ValueError(f"must be one of {', '.join(BACKENDS)}; got {value!r}")


def normalize_precision(value: object) -> str:
    """Check a precision setting.

    Args:
        value: ``"32"`` (or the integer 32), ``"bf16-mixed"`` or ``"16-mixed"``.

    Returns:
        The precision as a string.

    Raises:
        ValueError: Any other value.
    """
    if value == 32 and not isinstance(value, bool):
        return "32"
    if isinstance(value, str) and value.strip() in PRECISIONS:
        return value.strip()
    raise ValueError(f"must be one of {', '.join(repr(p) for p in PRECISIONS)}; got {value!r}")


def normalize_nproc(value: object) -> int:
    """Check a process count.

    Args:
        value: A whole number, at least 1.

    Returns:
        The count.

    Raises:
        ValueError: Not an integer, or less than 1.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"must be a whole number >= 1; got {value!r}")


@dataclass(frozen=True)
class LaunchDefaults:
    """Launch settings used when the user does not choose them.

    Attributes:
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        backend: ``single`` or ``ddp``.
        nproc: Number of training processes (for ``ddp``).
        precision: ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"``.
        deterministic: Deterministic mode (runs that repeat bit for bit, see
            ``docs/resume.md``); None, when not set: on for runs on the CPU, off elsewhere.
    """

    device: str = "auto"
    backend: str = "single"
    nproc: int = 1
    precision: str = "32"
    deterministic: bool | None = None


@dataclass(frozen=True)
class SnapshotSettings:
    """What the code snapshot leaves out.

    Attributes:
        max_file_bytes: Untracked files larger than this many bytes are left out
            (``max_file_size_mb`` in MiB, 1 MiB = 1,048,576 bytes).
        exclude: Extra glob patterns left out of snapshots.
    """

    max_file_bytes: int = 10 * _MIB
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataSettings:
    """The data runs read (``[data]``): fingerprinted at launch, never snapshotted.

    Attributes:
        paths: The data paths as written in ``workbench.toml`` (shown to the user).
        hash_below_bytes: Files smaller than this many bytes are content-hashed; larger
            ones are known by size and modification time (``hash_below_mb``, default 8).
    """

    paths: tuple[str, ...] = ()
    hash_below_bytes: int = 8 * _MIB

    def resolved(self, root: Path) -> tuple[Path, ...]:
        """The paths made absolute: ``~`` expanded, relative ones taken from ``root``.

        Symbolic links are kept (a ``data`` link inside the project stays a path inside
        it); ``..`` is folded lexically.
        """
        return tuple(Path(os.path.normpath(Path(root) / Path(p).expanduser())) for p in self.paths)

    def snapshot_excludes(self, root: Path) -> tuple[str, ...]:
        """Anchored ``exclude`` patterns for the data paths inside ``root`` (``/data``)."""
        root = Path(root)
        patterns = []
        for path in self.resolved(root):
            if path != root and root in path.parents:
                rel = path.relative_to(root).as_posix()
                patterns.append("/" + "".join(f"[{c}]" if c in "*?[" else c for c in rel))
        return tuple(patterns)


@dataclass(frozen=True)
class Project:
    """A loaded, checked ``workbench.toml``.

    Attributes:
        root: The project folder (absolute).
        name: The project's name (the folder name unless set).
        task_globs: Globs, relative to ``root``, of the files that define tasks.
        state_dir: Absolute folder for run data (``index.db``, ``runs/``).
        defaults: Launch defaults.
        snapshot: Snapshot settings (its ``exclude`` holds the data paths inside the
            project too, anchored: ``/data``).
        data: The data runs read (``[data]``).
        scripts: The ``[scripts.NAME]`` tables (``workbench.project.scripts``).
        python: ``[project] python``: what a script's ``python`` means ("": the
            interpreter the workbench runs under).
        max_running: ``[queue] max_running``: how many runs may hold a slot at once
            (running, or being launched) before the queue holds the next one back;
            ``None`` (the default): no project limit. Runs on ``cuda`` are held to one
            per GPU whatever this says.
        sweep_max_runs: ``[sweep] max_runs``: a sweep of more runs needs ``--yes`` (default 1000).
        clusters: The ``[clusters.NAME]`` tables (``workbench.project.clusters``; not
            submitted to yet).
        index_file: ``[project] index``: the run index outside the state folder (``~``
            expanded; relative to the project), or None for ``<state_dir>/index.db``.
        file: The ``workbench.toml`` that was read.
        max_log_bytes: A run's ``output.log`` is rotated past this size (``[project]
            max_log_size_mb``, default 100): the file is copied to ``output.log.1`` and
            emptied, so a run keeps at most about twice this much output.
    """

    root: Path
    name: str
    task_globs: tuple[str, ...] = ("tasks/**/*.py",)
    state_dir: Path = field(default=Path(".workbench"))
    defaults: LaunchDefaults = field(default_factory=LaunchDefaults)
    snapshot: SnapshotSettings = field(default_factory=SnapshotSettings)
    file: Path = field(default=Path(PROJECT_FILE))
    max_log_bytes: int = 100 * _MIB
    data: DataSettings = field(default_factory=DataSettings)
    scripts: tuple[Script, ...] = ()
    python: str = ""
    max_running: int | None = None
    sweep_max_runs: int = 1000
    clusters: tuple[Cluster, ...] = ()
    index_file: Path | None = None

    def cluster(self, name: str) -> Cluster | None:
        """The ``[clusters.NAME]`` table called ``name``, if there is one."""
        return next((c for c in self.clusters if c.name == name), None)

    def script(self, name: str) -> Script | None:
        """The ``[scripts.NAME]`` table called ``name``, if there is one."""
        return next((s for s in self.scripts if s.name == name), None)

    def __post_init__(self) -> None:
        # A Project built by hand (in a test) gets the same absolute paths as a loaded one.
        root = Path(self.root).resolve()
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "state_dir", root / self.state_dir)
        object.__setattr__(self, "file", root / self.file)
        object.__setattr__(self, "task_globs", tuple(self.task_globs))
        # Data is read from the project folder, never recorded with the code.
        exclude = tuple(dict.fromkeys((*self.snapshot.exclude, *self.data.snapshot_excludes(root))))
        if exclude != self.snapshot.exclude:
            object.__setattr__(self, "snapshot", SnapshotSettings(self.snapshot.max_file_bytes, exclude))

    @property
    def data_paths(self) -> tuple[Path, ...]:
        """The ``[data]`` paths, absolute (see :meth:`DataSettings.resolved`)."""
        return self.data.resolved(self.root)

    @property
    def index_path(self) -> Path:
        """The run index database: ``WORKBENCH_INDEX`` when set, else ``[project] index``,
        else ``<state_dir>/index.db`` (``docs/clusters.md``: keep it off NFS and Lustre)."""
        override = os.environ.get("WORKBENCH_INDEX", "").strip()
        if override:
            return (self.root / Path(override).expanduser()).resolve()
        return self.index_file if self.index_file is not None else self.state_dir / "index.db"

    @property
    def runs_dir(self) -> Path:
        """The folder of run folders, ``<state_dir>/runs``."""
        return self.state_dir / "runs"

    @property
    def configs_dir(self) -> Path:
        """The folder of config profiles, ``<root>/configs``."""
        return self.root / "configs"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly description of the project.

        Returns:
            A dict with string paths and plain values.
        """
        return {
            "root": str(self.root),
            "name": self.name,
            "tasks": list(self.task_globs),
            "state_dir": str(self.state_dir),
            "index_path": str(self.index_path),
            "runs_dir": str(self.runs_dir),
            "defaults": {
                "device": self.defaults.device,
                "backend": self.defaults.backend,
                "nproc": self.defaults.nproc,
                "precision": self.defaults.precision,
                "deterministic": self.defaults.deterministic,
            },
            "snapshot": {
                "max_file_bytes": self.snapshot.max_file_bytes,
                "exclude": list(self.snapshot.exclude),
            },
            "max_log_bytes": self.max_log_bytes,
            "data": {
                "paths": list(self.data.paths),
                "resolved": [str(p) for p in self.data_paths],
                "hash_below_bytes": self.data.hash_below_bytes,
            },
        }


def find_project_root(start: Path) -> Path:
    """Find the nearest folder, from ``start`` upwards, that holds ``workbench.toml``.

    Args:
        start: A folder (or a file, whose folder is used) to start from.

    Returns:
        The project root (absolute).

    Raises:
        ProjectNotFound: Neither ``start`` nor any parent holds ``workbench.toml``.
    """
    begin = Path(start).expanduser().resolve()
    if begin.is_file():
        begin = begin.parent
    for folder in (begin, *begin.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return folder
        if candidate.exists():
            raise ProjectNotFound(f"{candidate} is not a file (a folder?); {PROJECT_FILE} must be a TOML file")
    raise ProjectNotFound(
        f"no {PROJECT_FILE} in {begin} or any folder above it; pass --project DIR, "
        f"or create {PROJECT_FILE} in your project folder (an empty file will do)"
    )


def _data_paths(root: Path) -> Callable[[object], tuple[str, ...]]:
    def check(value: object) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        hint = 'must be a list of paths (relative to the project folder, or absolute), e.g. ["data/"]'
        if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
            raise ValueError(f"{hint}; got {value!r}")
        paths = tuple(dict.fromkeys(v.strip() for v in items))
        for text, path in zip(paths, DataSettings(paths).resolved(root)):
            if path == root or path in root.parents:
                raise ValueError(f"must not hold the project folder itself (the code is in it); got {text!r}")
        return paths

    return check


def load_project(root: Path) -> Project:
    """Read and check ``<root>/workbench.toml``.

    Args:
        root: The project folder (or the ``workbench.toml`` file itself).

    Returns:
        The checked project, with absolute paths.

    Raises:
        ProjectError: The file is missing, unreadable, not valid TOML, has an unknown
            key, or a value of the wrong type or out of range. The message is one line:
            ``workbench.toml:12: defaults.backend must be one of single, ddp; got 'dpp'``.
    """
    root = Path(root).expanduser().resolve()
    if root.name == PROJECT_FILE and root.is_file():
        root = root.parent
    path = root / PROJECT_FILE
    where = display_path(path)
    if path.exists() and not path.is_file():
        raise ProjectError(f"{where}: not a file (a folder?); {PROJECT_FILE} must be a TOML file")
    if not path.is_file():
        raise ProjectError(
            f"{where}: no such file; create {PROJECT_FILE} in {root} (an empty file will do) "
            "or pass --project DIR"
        )
    try:
        text = read_text(path)
    except UnicodeDecodeError:
        raise ProjectError(f"{where}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ProjectError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        data = load_toml_text(text, where)
    except ValueError as exc:
        raise ProjectError(str(exc)) from None

    checker = _Checker(text, where)
    sections: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            valid = ", ".join(_SECTIONS)
            raise checker.fail(
                (name,), f"unknown section '{name}'; valid sections: {valid}{_suggest(name, tuple(_SECTIONS))}"
            )
        if not isinstance(value, dict):
            raise checker.fail((name,), f"[{name}] must be a table; got {value!r}")
        for key in value if name not in ("scripts", "clusters") else ():
            if key not in _SECTIONS[name]:
                valid_keys = _SECTIONS[name]
                raise checker.fail(
                    (name, key),
                    f"unknown key '{key}' in [{name}]; valid keys: {', '.join(valid_keys)}"
                    f"{_suggest(key, valid_keys)}",
                )
        sections[name] = value

    project = sections.get("project", {})
    defaults = sections.get("defaults", {})
    snapshot = sections.get("snapshot", {})
    data_table = sections.get("data", {})
    queue = sections.get("queue", {})

    def get(section: str, table: dict[str, Any], key: str, check: Callable[[Any], Any], default: Any) -> Any:
        if key not in table:
            return default
        return checker.check((section, key), table[key], check)

    return Project(
        root=root,
        name=get("project", project, "name", _string, root.name),
        task_globs=get("project", project, "tasks", _globs, ("tasks/**/*.py",)),
        state_dir=get("project", project, "state_dir", _state_dir(root), root / ".workbench"),
        defaults=LaunchDefaults(
            device=get("defaults", defaults, "device", normalize_device, "auto"),
            backend=get("defaults", defaults, "backend", normalize_backend, "single"),
            nproc=get("defaults", defaults, "nproc", normalize_nproc, 1),
            precision=get("defaults", defaults, "precision", normalize_precision, "32"),
            deterministic=get("defaults", defaults, "deterministic", _boolean, None),
        ),
        snapshot=SnapshotSettings(
            max_file_bytes=get("snapshot", snapshot, "max_file_size_mb", _size_mb, 10 * _MIB),
            exclude=get("snapshot", snapshot, "exclude", _patterns, ()),
        ),
        file=path,
        max_log_bytes=get("project", project, "max_log_size_mb", _size_mb, 100 * _MIB),
        data=DataSettings(
            paths=get("data", data_table, "paths", _data_paths(root), ()),
            hash_below_bytes=get("data", data_table, "hash_below_mb", _size_mb, 8 * _MIB),
        ),
        scripts=parse_scripts(sections.get("scripts", {}), checker.fail_raw,
                              lambda key: find_key_line(text, key)),
        python=get("project", project, "python", _string, ""),
        max_running=get("queue", queue, "max_running", _max_running, None),
        sweep_max_runs=get("sweep", sections.get("sweep", {}), "max_runs", _max_runs, 1000),
        clusters=parse_clusters(sections.get("clusters", {}), checker.fail_raw,
                                lambda key: find_key_line(text, key)),
        index_file=get("project", project, "index", _index_file(root), None),
    )
