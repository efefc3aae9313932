"""Runs that repeat: the environment a training process starts with, and its record.

Bit-identical weights from two runs of the same code, config and seed need more than the
seed: the same intra-op thread count, deterministic kernels, and a BLAS library that does
not pick a different kernel from one process to the next. MKL and OpenMP read their
settings from the environment once, when torch loads, so the process that starts training
(the supervisor) must put them there — see :func:`training_env`. Inside the training
process ``workbench.core.numerics`` applies the rest and describes what it got; the run
keeps that description in ``attempts/<n>/numerics.json`` and in a ``numerics`` event.

A resume, a fork and any re-run of a run reuse the recorded settings (:func:`reused_settings`):
the same thread counts and the same numerics environment variables, whatever the machine
or the shell would pick now. When what the new attempt got still differs from the record
(another machine: other cores, another CPU capability, another MKL), the training process
says so in a ``numerics-changed`` event (:func:`numerics_changes`).

This module never imports torch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DETERMINISTIC_ENV",
    "NUMERICS_ENV_VAR",
    "NUMERICS_FILE",
    "NumericsSettings",
    "is_numerics_var",
    "latest_numerics",
    "numerics_changes",
    "numerics_path",
    "numerics_summary",
    "numerics_to_reuse",
    "read_numerics",
    "record_numerics",
    "reused_settings",
    "training_env",
    "write_numerics",
]

#: The file, in ``attempts/<n>/``, that records an attempt's numerics.
NUMERICS_FILE = "numerics.json"
#: The variable through which the supervisor hands :class:`NumericsSettings` to training.
NUMERICS_ENV_VAR = "WORKBENCH_NUMERICS"
#: What deterministic mode puts in the training process's environment (a value the user
#: exported already wins, and is recorded). ``MKL_CBWR=AUTO,STRICT`` is MKL's conditional
#: numerical reproducibility: one code path, fixed for the process, instead of a choice per
#: call, and (STRICT) matrix products that do not depend on the thread count; it costs
#: about nothing here, where ``COMPATIBLE`` (the same SSE2 path on every CPU) costs 2-3x
#: (benchmarks/determinism.py). The ``*_DYNAMIC`` switches keep OpenMP and MKL from
#: changing a thread team's size (MKL's reproducibility conditions);
#: ``CUBLAS_WORKSPACE_CONFIG`` is what deterministic cuBLAS needs on CUDA.
DETERMINISTIC_ENV: dict[str, str] = {
    "MKL_CBWR": "AUTO,STRICT",
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
}

# Mirrors workbench.core.numerics (which imports torch, so it cannot be imported here).
_PREFIXES = ("OMP_", "GOMP_", "KMP_", "MKL_", "ONEDNN_", "DNNL_", "OPENBLAS_")
_SINGLE = ("CUBLAS_WORKSPACE_CONFIG", "CUDA_LAUNCH_BLOCKING", "NVIDIA_TF32_OVERRIDE",
           "ATEN_CPU_CAPABILITY", "PYTHONHASHSEED", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE")


def is_numerics_var(name: str) -> bool:
    """Whether environment variable ``name`` can change a training process's numerics."""
    return name.startswith(_PREFIXES) or name in _SINGLE


@dataclass(frozen=True)
class NumericsSettings:
    """What the training process applies before it builds anything.

    Attributes:
        deterministic: Deterministic mode (see ``workbench.core.numerics.apply_numerics``).
        threads: Intra-op threads to use; None: torch's choice (recorded either way).
        interop_threads: Inter-op threads to use; None: torch's choice.
        reused_from: Where ``threads`` and the environment came from, e.g.
            ``attempt 1`` or ``run 0f3a… attempt 2``; empty for a first attempt.
    """

    deterministic: bool = True
    threads: int | None = None
    interop_threads: int | None = None
    reused_from: str = ""

    def to_env(self) -> str:
        """The value of :data:`NUMERICS_ENV_VAR`."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], default_deterministic: bool = True) -> NumericsSettings:
        """Read :data:`NUMERICS_ENV_VAR` (a process started without it gets the defaults)."""
        text = environ.get(NUMERICS_ENV_VAR, "")
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}

        def count(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

        return cls(deterministic=bool(data.get("deterministic", default_deterministic)),
                   threads=count("threads"), interop_threads=count("interop_threads"),
                   reused_from=str(data.get("reused_from", "")))


def reused_settings(record: Mapping[str, Any] | None, deterministic: bool) -> tuple[NumericsSettings, dict[str, str] | None]:
    """The settings and numerics environment a new attempt takes over from ``record``.

    Args:
        record: An earlier attempt's ``numerics.json`` (None: nothing to reuse).
        deterministic: The run's deterministic flag (from its spec, which a resume keeps).

    Returns:
        The settings (the recorded thread counts), and the recorded numerics environment
        variables (None when there is no record: the current environment stands).
    """
    if not record:
        return NumericsSettings(deterministic), None
    settings = NumericsSettings.from_env({NUMERICS_ENV_VAR: json.dumps({
        "deterministic": deterministic, "threads": record.get("threads"),
        "interop_threads": record.get("interop_threads"), "reused_from": record.get("source", ""),
    })})
    env = record.get("env")
    return settings, {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def training_env(base: Mapping[str, str], *, deterministic: bool, backend: str = "single",
                 record: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The environment a training process starts with, as far as its numerics go.

    Args:
        base: The supervisor's environment.
        deterministic: The run's deterministic flag.
        backend: ``single`` or ``ddp`` (DDP starts one thread per process unless the user
            set ``OMP_NUM_THREADS``: N processes on few cores must not oversubscribe them).
        record: An earlier attempt's numerics record to reuse (a resume, a fork, a re-run):
            its numerics variables replace the current ones exactly (one set now but not
            then is removed) and its thread counts are applied.

    Returns:
        A new environment, with :data:`NUMERICS_ENV_VAR` set for the training process.
    """
    env = dict(base)
    settings, recorded = reused_settings(record, deterministic)
    if recorded is not None:
        for key in [k for k in env if is_numerics_var(k)]:
            del env[key]
        env.update(recorded)
    else:
        if backend == "ddp":
            env.setdefault("OMP_NUM_THREADS", "1")
        if deterministic:
            for key, value in DETERMINISTIC_ENV.items():
                env.setdefault(key, value)
    env[NUMERICS_ENV_VAR] = settings.to_env()
    return env


def numerics_path(run_dir: Path, attempt: int) -> Path:
    """Where attempt ``attempt``'s numerics record is written."""
    return Path(run_dir) / "attempts" / str(int(attempt)) / NUMERICS_FILE


def write_numerics(run_dir: Path, attempt: int, record: Mapping[str, Any]) -> Path:
    """Write an attempt's numerics record atomically (a temporary file, fsync, rename)."""
    path = numerics_path(run_dir, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".numerics.{os.getpid()}.{time.monotonic_ns()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(dict(record), fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_numerics(run_dir: Path, attempt: int) -> dict[str, Any] | None:
    """An attempt's numerics record, or None (not written, or unreadable)."""
    try:
        data = json.loads(numerics_path(run_dir, attempt).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def latest_numerics(run_dir: Path, before: int | None = None) -> dict[str, Any] | None:
    """The newest readable numerics record of a run (of an attempt before ``before``).

    The record gets a ``source`` key (``attempt N``) that says where it came from.
    """
    folder = Path(run_dir) / "attempts"
    if not folder.is_dir():
        return None
    attempts = sorted((int(p.name) for p in folder.iterdir() if p.name.isdigit()), reverse=True)
    for attempt in attempts:
        if before is not None and attempt >= before:
            continue
        record = read_numerics(run_dir, attempt)
        if record is not None:
            record.setdefault("source", f"attempt {attempt}")
            return record
    return None


def numerics_to_reuse(run_dir: Path, attempt: int, parent_run_dir: str | Path | None = None,
                      parent_id: str = "") -> dict[str, Any] | None:
    """The record a new attempt reuses: the run's latest earlier attempt's, else (a fork's
    first attempt) its parent run's latest; None for a fresh run.
    """
    record = latest_numerics(run_dir, before=attempt)
    if record is None and parent_run_dir:
        record = latest_numerics(Path(parent_run_dir))
        if record is not None:
            record["source"] = f"run {parent_id or Path(parent_run_dir).name} {record['source']}"
    return record


#: What must match between two records for their runs to compute alike (dotted paths).
_COMPARED = ("threads", "interop_threads", "deterministic", "cpu_capability", "float32_matmul_precision",
             "parallel.backend", "parallel.mkl", "parallel.onednn", "parallel.openmp",
             "build.blas_info", "torch", "cpu.model")


def _get(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def numerics_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between two numerics records, one phrase each (empty: nothing).

    Thread counts, deterministic mode, CPU model and capability, the BLAS/oneDNN/OpenMP
    builds, torch's version and the numerics environment variables are compared; the host
    alone is not (two identical machines compute alike).
    """
    changes = [f"{path} {_get(before, path)!r} -> {_get(now, path)!r}"
               for path in _COMPARED if _get(before, path) != _get(now, path)]
    env_before = before.get("env") if isinstance(before.get("env"), Mapping) else {}
    env_now = now.get("env") if isinstance(now.get("env"), Mapping) else {}
    for key in sorted(set(env_before) | set(env_now)):
        if key != NUMERICS_ENV_VAR and env_before.get(key) != env_now.get(key):
            changes.append(f"{key} {env_before.get(key, 'unset')!s} -> {env_now.get(key, 'unset')!s}")
    return changes


def numerics_summary(record: Mapping[str, Any]) -> str:
    """One line: ``deterministic, 2 threads (2 inter-op), MKL_CBWR=COMPATIBLE; MKL 2024.2, oneDNN v3.12.0, AVX512``."""
    parts = ["deterministic" if record.get("deterministic") else "not deterministic",
             f"{record.get('threads')} threads ({record.get('interop_threads')} inter-op)"]
    env = record.get("env") if isinstance(record.get("env"), Mapping) else {}
    parts += [f"{k}={v}" for k, v in env.items() if k in ("MKL_CBWR", "OMP_NUM_THREADS", "MKL_NUM_THREADS")]
    build = []
    mkl = str(_get(record, "parallel.mkl") or "")
    if "Version" in mkl:
        build.append("MKL " + mkl.split("Version", 1)[1].split("-")[0].strip())
    onednn = str(_get(record, "parallel.onednn") or "")
    if onednn:
        build.append("oneDNN " + onednn.split()[2] if len(onednn.split()) > 2 else onednn)
    if record.get("cpu_capability"):
        build.append(str(record["cpu_capability"]))
    return ", ".join(parts) + ("; " + ", ".join(build) if build else "")


def record_numerics(index: Any, run_id: str, run_dir: Path, attempt: int,
                    record: Mapping[str, Any]) -> list[str]:
    """Keep an attempt's numerics: ``attempts/<n>/numerics.json`` and a ``numerics`` event.

    A resumed attempt (or a fork's first) is compared with the record it took its settings
    from; what differs is said in a ``numerics-changed`` event and on stderr (the run goes
    on: it may no longer match an uninterrupted run bit for bit).

    Args:
        index: The run index (``workbench.store.RunIndex``).
        run_id: The run.
        run_dir: Its folder.
        attempt: This attempt.
        record: ``workbench.core.numerics.describe_numerics()`` with this attempt's settings.

    Returns:
        The differences found (empty for a first attempt, or when nothing differs).
    """
    import sys

    record = dict(record)
    write_numerics(run_dir, attempt, record)
    index.add_event(run_id, "numerics", numerics_summary(record), record)
    previous = latest_numerics(run_dir, before=attempt)
    if previous is None:
        run = index.get_run(run_id)
        parent = index.get_run(run.parent_id) if run is not None and run.parent_id else None
        if parent is not None and parent.run_dir:
            previous = numerics_to_reuse(run_dir, attempt, parent.run_dir, parent.id)
    if previous is None:
        return []
    changes = numerics_changes(previous, record)
    machine = [f"{key} {_get(previous, 'cpu.' + key)} -> {_get(record, 'cpu.' + key)}"
               for key in ("logical", "usable") if _get(previous, "cpu." + key) != _get(record, "cpu." + key)]
    if changes or machine:
        source = previous.get("source", "the earlier attempt")
        message = (f"numerics differ from {source}: " + "; ".join(changes) if changes else
                   f"same numerics settings as {source} on other hardware")
        if machine:
            message += f" (CPUs {', '.join(machine)}; threads kept at {record.get('threads')})"
        message += "; the weights may not match an uninterrupted run bit for bit" if changes else ""
        print(f"warning: {message}", file=sys.stderr, flush=True)
        index.add_event(run_id, "numerics-changed", message,
                        {"source": source, "changes": changes, "machine": machine})
    return changes
