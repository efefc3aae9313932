"""``run.toml``: the launch spec a run's processes read (task, resolved config, device …).

The file is written with ``tomli_w`` and read with ``tomllib``. TOML has no null, so a
``None`` anywhere in the spec (a top-level field or a value deep in the config) is left
out of its table and its path is listed in the top-level ``unset`` array (a list of key
paths, e.g. ``unset = [["config", "optim", "momentum"]]``); reading puts ``None`` back.
``format`` says which layout wrote the file: files without it (the first wave's
hand-written TOML) still load; a newer format is refused with one line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.project import Project

__all__ = [
    "SINKS",
    "SPEC_FORMAT",
    "STEPS",
    "RunSpec",
    "check_round_trip",
    "default_sink",
    "dump_spec",
    "load_spec",
    "read_spec",
    "run_dir_of",
    "toml_literal",
    "write_spec",
]

#: The layout version this code writes (files without ``format`` are version 1).
SPEC_FORMAT = 2

#: The steps a run's pipeline may hold, in the order they may come (``workbench.runs.train``
#: runs them: ``fit()``, ``test()``, ``evaluate()``).
STEPS = ("fit", "test", "evaluate")

_HEADER = "# The launch spec of this run, written by workbench. Do not edit.\n"


@dataclass
class RunSpec:
    """Everything a run's supervisor and training processes need to start it.

    Attributes:
        id: The run id.
        task: The task's class name.
        task_file: The task's file, relative to the project root.
        task_module: The module name the file is imported as (e.g. ``tasks.sine``).
        config: The resolved config (nested plain values; ``None`` allowed).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        backend: ``single`` or ``ddp``.
        nproc: Training processes (ddp).
        precision: ``32``, ``bf16-mixed`` or ``16-mixed``.
        project_root: The project folder (the training processes' working directory).
        index: The run index file.
        code_dir: Where the task's code is imported from (the snapshot's copy).
        name: The run's name.
        tags: The run's tags.
        profile: The profile the config came from, if any.
        snapshot: The code snapshot's commit, if any.
        resume_from: A checkpoint to start from (resume and fork), if any.
        max_log_bytes: ``output.log`` is rotated past this size (0: never).
        deterministic: Deterministic mode (``workbench.runs.numerics``): the training process
            starts with MKL's reproducible mode and fixed thread teams, and uses deterministic
            kernels. A ``run.toml`` without it (written before it existed) ran without it.
        steps: The pipeline's steps in order (``fit``, ``test``, ``evaluate``); empty means
            ``["fit"]``. A resumed run continues at the first step not completed.
        weights: A checkpoint (or weights file) whose weights are loaded before the first
            step: what an evaluation tests.
        evaluation_of: For an evaluation, the id of the run whose checkpoint it tests.
        kind: ``task``, or ``script`` for a ``[scripts.NAME]`` launch (then ``command`` is
            what the supervisor runs, and ``task`` the script's name).
        command: A script run's argument list: interpreter resolved, script argument
            pointing into ``code_dir``, params substituted, except secret params, which stay
            ``{name}`` placeholders that the supervisor fills from its environment.
        script: A script run's table as launched (``Script.to_dict``: capture pattern and
            step, resume arguments, checkpoints glob, secret names, module after ``-m``).
        sink: Where rank 0 records: ``index`` (the run index, directly) or ``journal`` (the
            run folder's journal, ingested by the supervisor; ``docs/clusters.md``). A new
            spec takes ``WORKBENCH_SINK`` when set; a ``run.toml`` without it is ``index``.
    """

    id: str
    task: str
    task_file: str
    task_module: str
    config: dict[str, Any]
    device: str
    backend: str
    nproc: int
    precision: str
    project_root: str
    index: str
    code_dir: str
    name: str = ""
    tags: list[str] = field(default_factory=list)
    profile: str = ""
    snapshot: str = ""
    resume_from: str = ""
    max_log_bytes: int = 0
    deterministic: bool = False
    steps: list[str] = field(default_factory=list)
    weights: str = ""
    evaluation_of: str = ""
    kind: str = "task"
    command: list[str] = field(default_factory=list)
    script: dict[str, Any] = field(default_factory=dict)
    sink: str = field(default_factory=lambda: default_sink())


#: The places rank 0 can record to.
SINKS = ("index", "journal")


def default_sink() -> str:
    """``WORKBENCH_SINK`` when it names a sink, else ``index``."""
    import os

    value = os.environ.get("WORKBENCH_SINK", "")
    return value if value in SINKS else "index"


def _strip_none(value: Any, path: tuple[str, ...], unset: list[list[str]]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            key = str(key)
            if item is None:
                unset.append([*path, key])
            else:
                out[key] = _strip_none(item, (*path, key), unset)
        return out
    if isinstance(value, (list, tuple)):
        if any(item is None for item in value):
            raise WorkbenchError(f"run.toml cannot hold a None inside a list ({'.'.join(path)})")
        return [_strip_none(item, path, unset) for item in value]
    return value


def dump_spec(spec: RunSpec) -> str:
    """The text of ``run.toml`` for ``spec``.

    Raises:
        WorkbenchError: A value TOML cannot hold (one line naming it).
    """
    import tomli_w

    unset: list[list[str]] = []
    data = _strip_none(asdict(spec), (), unset)
    data["format"] = SPEC_FORMAT
    if unset:
        data["unset"] = unset
    try:
        text = _HEADER + tomli_w.dumps(data)
        text.encode("utf-8")  # a lone surrogate (from a badly decoded argument) cannot be written
    except (TypeError, ValueError) as exc:
        raise WorkbenchError(f"run.toml cannot hold this launch: {exc}") from None
    return text


def load_spec(text: str, where: str = "run.toml") -> RunSpec:
    """Parse the text of a ``run.toml`` (any format this code knows).

    Raises:
        WorkbenchError: Not TOML, a newer format, or fields missing.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(f"{where}: unreadable: {exc}") from None
    version = data.pop("format", 1)
    if not isinstance(version, int) or version > SPEC_FORMAT:
        raise WorkbenchError(f"{where}: written by a newer workbench (format {version}, this one "
                             f"knows {SPEC_FORMAT}); upgrade workbench")
    for path in data.pop("unset", []):
        if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
            raise WorkbenchError(f"{where}: bad entry in unset: {path!r}")
        table = data
        for key in path[:-1]:
            table = table.setdefault(key, {})
        table[path[-1]] = None
    data.setdefault("sink", "index")  # written before sinks existed
    known = {f.name for f in fields(RunSpec)}
    try:
        return RunSpec(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise WorkbenchError(f"{where}: incomplete launch spec: {exc}") from None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def check_round_trip(spec: RunSpec) -> None:
    """Refuse a spec that would not read back as written (before anything is written).

    Raises:
        WorkbenchError: One line naming the first field that would change.
    """
    back = asdict(load_spec(dump_spec(spec)))
    for name, value in asdict(spec).items():
        if isinstance(value, tuple):
            value = list(value)
        if not _same(value, back[name]):
            raise WorkbenchError(f"run.toml cannot hold {name}={value!r} (it would read back as "
                                 f"{back[name]!r})")


def write_spec(run_dir: Path, spec: RunSpec) -> Path:
    """Write ``run_dir/run.toml`` (atomically: a temporary file, then a rename)."""
    path = run_dir / "run.toml"
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(dump_spec(spec), encoding="utf-8")
    tmp.replace(path)
    return path


def read_spec(run_dir: Path) -> RunSpec:
    """Read ``run_dir/run.toml``.

    Raises:
        WorkbenchError: The file is missing or unreadable.
    """
    path = Path(run_dir) / "run.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: missing; is {run_dir} a run folder?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: unreadable: {exc}") from None
    return load_spec(text, str(path))


def toml_literal(value: Any) -> str:
    """``value`` as a TOML literal (for ``KEY=VALUE`` overrides rebuilt from a config)."""
    import tomli_w

    if value is None:
        raise WorkbenchError("a TOML value cannot be None")
    text = tomli_w.dumps({"v": value})
    return text.split("=", 1)[1].strip() if not isinstance(value, dict) else _inline(value)


def _inline(table: dict[str, Any]) -> str:
    import json

    return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_literal(v)}" for k, v in table.items()) + "}"


def run_dir_of(project: Project, run_id: str) -> Path:
    """The folder of run ``run_id``, checked to stay inside the project's runs folder."""
    from workbench.snapshot import check_run_id

    runs = project.runs_dir.resolve()
    path = (runs / check_run_id(run_id)).resolve()
    if path.parent != runs:
        raise WorkbenchError(f"run id {run_id!r} would leave {runs}")
    return path
