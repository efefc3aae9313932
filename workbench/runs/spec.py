"""``run.toml``: the launch spec a run's processes read (task, resolved config, device …)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["RunSpec", "dump_toml", "read_spec", "write_spec"]


@dataclass
class RunSpec:
    """Everything a run's supervisor and training processes need to start it.

    Attributes:
        id: The run id.
        task: The task's class name.
        task_file: The task's file, relative to the project root.
        task_module: The module name the file is imported as (e.g. ``tasks.sine``).
        config: The resolved config (nested plain values).
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


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        raise WorkbenchError("run.toml cannot hold None values")
    return json.dumps(str(value))


def dump_toml(data: dict[str, Any]) -> str:
    """Write a dict of plain values as TOML (top-level tables for nested dicts)."""
    lines = []
    tables = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{json.dumps(key) if not key.isidentifier() else key} = {_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        for key, value in table.items():
            if value is not None:
                lines.append(f"{json.dumps(str(key))} = {_value(value)}")
    return "\n".join(lines) + "\n"


def write_spec(run_dir: Path, spec: RunSpec) -> Path:
    """Write ``run_dir/run.toml`` (atomically: a temporary file, then a rename)."""
    path = run_dir / "run.toml"
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text("# The launch spec of this run, written by workbench. Do not edit.\n"
                   + dump_toml(asdict(spec)), encoding="utf-8")
    tmp.replace(path)
    return path


def read_spec(run_dir: Path) -> RunSpec:
    """Read ``run_dir/run.toml``.

    Raises:
        WorkbenchError: The file is missing or unreadable.
    """
    from workbench.project._toml import tomllib

    path = Path(run_dir) / "run.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: missing; is {run_dir} a run folder?") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WorkbenchError(f"{path}: unreadable: {exc}") from None
    known = RunSpec.__dataclass_fields__
    return RunSpec(**{k: v for k, v in data.items() if k in known})
