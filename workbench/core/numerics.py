"""The numerics of a training process: apply deterministic mode and thread counts, describe them.

Two runs of the same code, config and seed end with the same weights only if their
processes compute the same way: the same intra-op thread count (a parallel reduction or a
BLAS kernel splits its work by it), deterministic kernels where torch has a choice, and
the BLAS library's reproducibility settings. Some of these are environment variables that
MKL and OpenMP read once, when they load (``MKL_CBWR``, ``MKL_DYNAMIC``, ``OMP_DYNAMIC``):
the process that starts training sets those (``workbench.runs.numerics``); this module
does the part that happens inside the training process, and describes what it got.

Only training processes import this module (it imports torch).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from typing import Any

import torch

__all__ = ["RECORDED_ENV", "RECORDED_ENV_PREFIXES", "apply_numerics", "describe_numerics", "recorded_env"]

#: Environment variables whose prefix means they can change a computation's numerics.
RECORDED_ENV_PREFIXES = ("OMP_", "GOMP_", "KMP_", "MKL_", "ONEDNN_", "DNNL_", "OPENBLAS_")
#: Single environment variables that can change numerics (CUDA, CPU dispatch, hashing).
RECORDED_ENV = ("CUBLAS_WORKSPACE_CONFIG", "CUDA_LAUNCH_BLOCKING", "NVIDIA_TF32_OVERRIDE",
                "ATEN_CPU_CAPABILITY", "PYTHONHASHSEED", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE")


def recorded_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The numerics-relevant environment variables that are set, sorted by name."""
    environ = dict(os.environ if environ is None else environ)
    return {key: environ[key] for key in sorted(environ)
            if key.startswith(RECORDED_ENV_PREFIXES) or key in RECORDED_ENV}


def apply_numerics(deterministic: bool, threads: int | None = None,
                   interop_threads: int | None = None) -> list[str]:
    """Set this process's numerics; call it before the task builds anything.

    Args:
        deterministic: Use deterministic kernels where torch has a choice
            (``torch.use_deterministic_algorithms(True, warn_only=True)``: an operation
            without a deterministic implementation warns once in the output instead of
            failing the run), deterministic oneDNN and cuDNN, and no cuDNN autotuning.
        threads: Intra-op threads (``torch.set_num_threads``); None keeps torch's choice.
        interop_threads: Inter-op threads; None keeps torch's choice. Torch accepts this
            only before its first parallel work.

    Returns:
        Notes on what could not be applied (empty when everything was).
    """
    notes: list[str] = []
    if threads:
        torch.set_num_threads(int(threads))
    if interop_threads and torch.get_num_interop_threads() != interop_threads:
        try:
            torch.set_num_interop_threads(int(interop_threads))
        except RuntimeError as exc:  # the inter-op pool has started already
            notes.append(f"inter-op threads stay {torch.get_num_interop_threads()} "
                         f"(asked for {interop_threads}): {str(exc).splitlines()[0]}")
    if deterministic:
        # What torch.use_deterministic_algorithms(True, warn_only=True) does, without its
        # import of torch._inductor (about 2.3 s of CPU at every training process's start
        # here): torch.compile's inductor reads the same choice from its environment
        # variable when (if ever) it loads; if it is loaded already, set it there too.
        os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"
        inductor = sys.modules.get("torch._inductor.config")
        if inductor is not None:
            inductor.deterministic = True
        torch._C._set_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.mkldnn.deterministic = True
    return notes


_PARALLEL = {
    "backend": re.compile(r"ATen parallel backend:\s*(.+)"),
    "openmp": re.compile(r"^(OpenMP .+)$", re.M),
    "omp_max_threads": re.compile(r"omp_get_max_threads\(\)\s*:\s*(\d+)"),
    "mkl": re.compile(r"^(Intel\(R\) (?:oneAPI )?Math Kernel Library.+?)(?: for .*)?$", re.M),
    "mkl_max_threads": re.compile(r"mkl_get_max_threads\(\)\s*:\s*(\d+)"),
    "onednn": re.compile(r"^(Intel\(R\) MKL-DNN .+|oneDNN .+)$", re.M),
}
_BUILD = re.compile(r"\b(BLAS_INFO|LAPACK_INFO|USE_MKL|USE_MKLDNN|USE_OPENMP|TORCH_VERSION)=([^,\s]*)")
_CAPABILITY = re.compile(r"CPU capability usage:\s*(\S+)")


def _parallel_info() -> dict[str, Any]:
    text = torch.__config__.parallel_info()
    found: dict[str, Any] = {}
    for key, pattern in _PARALLEL.items():
        match = pattern.search(text)
        if match:
            value = match.group(1).strip()
            found[key] = int(value) if value.isdigit() else value
    return found


def _build_info() -> dict[str, Any]:
    text = torch.__config__.show()
    found: dict[str, Any] = {key.lower(): value for key, value in _BUILD.findall(text)}
    match = _CAPABILITY.search(text)
    if match:
        found["cpu_capability_usage"] = match.group(1)
    return found


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def describe_numerics() -> dict[str, Any]:
    """What decides this process's numerics, as plain JSON values.

    Returns:
        ``threads`` and ``interop_threads`` (torch's intra- and inter-op counts),
        ``deterministic`` (``torch.are_deterministic_algorithms_enabled()``) with
        ``deterministic_warn_only``, the cuDNN and oneDNN flags, ``float32_matmul_precision``,
        ``env`` (:func:`recorded_env`), ``parallel`` (from ``torch.__config__.parallel_info()``:
        the parallel backend, OpenMP, MKL and oneDNN versions and their thread limits),
        ``build`` (from ``torch.__config__.show()``: BLAS and LAPACK, MKL/oneDNN/OpenMP
        switches, the CPU capability in use), ``cpu`` (model, logical CPUs, CPUs this
        process may use), ``torch`` and ``host``.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "onednn_deterministic": bool(torch.backends.mkldnn.deterministic),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env": recorded_env(),
        "parallel": _parallel_info(),
        "build": _build_info(),
        "cpu": {"model": _cpu_model(), "logical": os.cpu_count() or 1, "usable": usable},
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "host": socket.gethostname(),
    }
