"""Which devices exist, learned from a probe subprocess (the workbench process never imports torch)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["CPU_OVERSUBSCRIPTION_LIMIT", "ProbeError", "check_device", "check_resources", "probe_devices"]

_MAX_AGE = 24 * 3600.0


class ProbeError(WorkbenchError):
    """The device probe failed (torch missing or broken in the run environment)."""


def _normal(path: str) -> str:
    """One spelling per path (``tests/../.venv/bin/python`` is ``.venv/bin/python``); links are
    kept: two virtual environments linking one interpreter have different torches."""
    return os.path.normpath(os.path.abspath(path))


def _torch_key(python: str) -> dict[str, Any]:
    key: dict[str, Any] = {"python": _normal(python)}
    if _normal(python) == _normal(sys.executable):
        spec = importlib.util.find_spec("torch")  # finds, does not import
        if spec is not None and spec.origin:
            key["torch"] = _normal(spec.origin)
            key["torch_mtime"] = os.stat(spec.origin).st_mtime
    return key


def probe_devices(state_dir: Path | None = None, *, python: str = sys.executable,
                  refresh: bool = False) -> dict[str, Any]:
    """Ask a subprocess which devices torch sees; cache the answer in ``state_dir``.

    Returns:
        ``{"devices": ["cpu", "cuda:0", ...], "default": "cpu", "torch": "2.x", ...}``

    Raises:
        ProbeError: The probe could not run; the message says why.
    """
    cache = Path(state_dir) / "devices.json" if state_dir is not None else None
    key = _torch_key(python)
    if cache is not None and cache.is_file() and not refresh:
        try:
            data = json.loads(cache.read_text())
            if data.get("key") == key and time.time() - data.get("time", 0) < _MAX_AGE:
                return data["probe"]
        except (OSError, ValueError, KeyError):
            pass
    try:
        result = subprocess.run([python, "-m", "workbench.core.devices"], capture_output=True,
                                stdin=subprocess.DEVNULL,
                                text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeError(f"the device probe could not run ({python}): {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProbeError(f"the device probe failed ({python} -m workbench.core.devices): {last}")
    try:
        probe = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ProbeError(f"the device probe printed no answer: {result.stdout[-200:]!r}") from None
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        # A file of our own: launches in other processes may be probing at the same time.
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "time": time.time(), "probe": probe}))
        tmp.replace(cache)
    return probe


def check_device(device: str, backend: str, nproc: int, probe: dict[str, Any]) -> None:
    """Refuse a device/backend this machine cannot run, naming what it can.

    Raises:
        WorkbenchError: The device does not exist, or the backend cannot use it.
    """
    devices: list[str] = probe.get("devices", ["cpu"])
    have = ", ".join(devices)
    if device == "cuda":
        if not any(d.startswith("cuda") for d in devices):
            raise WorkbenchError(f"device 'cuda' is not available on this machine; available: {have}")
    elif device not in ("auto", "cpu") and device not in devices:
        raise WorkbenchError(f"device {device!r} is not available on this machine; available: {have}")
    if backend == "ddp":
        if device == "mps" or (device == "auto" and probe.get("default") == "mps"):
            raise WorkbenchError("backend 'ddp' does not run on mps; use --device cpu or a single process")
        if device.startswith("cuda"):
            gpus = sum(d.startswith("cuda") for d in devices)
            if device.startswith("cuda:"):
                raise WorkbenchError("backend 'ddp' places one process per GPU: use --device cuda, not "
                                     f"{device!r}")
            if nproc > gpus:
                raise WorkbenchError(f"--nproc {nproc} needs {nproc} GPUs with --device cuda; this machine "
                                     f"has {gpus}")


#: A DDP run on CPU may have up to this many processes per core before it is refused.
CPU_OVERSUBSCRIPTION_LIMIT = 4


def check_resources(device: str, backend: str, nproc: int, precision: str, probe: dict[str, Any],
                    cpus: int | None = None) -> list[str]:
    """Refuse what this machine cannot run; return warnings for what it runs badly.

    On top of :func:`check_device`: a precision the device cannot do (``16-mixed`` needs a
    CUDA GPU), and process counts beyond the machine's cores (more processes than cores is
    a warning; more than ``CPU_OVERSUBSCRIPTION_LIMIT`` per core is refused).

    Returns:
        Warnings, one line each (empty when all is well).

    Raises:
        WorkbenchError: One line saying what would be right.
    """
    check_device(device, backend, nproc, probe)
    resolved = probe.get("default", "cpu") if device == "auto" else device
    on_cpu = resolved == "cpu"
    if precision == "16-mixed" and not resolved.startswith("cuda"):
        raise WorkbenchError(f"precision '16-mixed' needs a CUDA GPU; on {resolved} use 'bf16-mixed' or '32'")
    warnings: list[str] = []
    if backend == "ddp" and on_cpu:
        cores = cpus or os.cpu_count() or 1
        if nproc > CPU_OVERSUBSCRIPTION_LIMIT * cores:
            raise WorkbenchError(f"--nproc {nproc} on a {cores}-core CPU is more than {CPU_OVERSUBSCRIPTION_LIMIT} "
                                 f"processes per core; use at most {CPU_OVERSUBSCRIPTION_LIMIT * cores}")
        if nproc > cores:
            warnings.append(f"--nproc {nproc} is more than this machine's {cores} cores: "
                            "the processes will share them and run slower")
    return warnings
