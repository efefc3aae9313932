"""System metrics of a run, sampled by its supervisor: ``sys/*`` points stored against time.

The supervisor (not the training loop) samples the run's process tree every few seconds —
CPU %, resident memory — the machine's memory, and, where ``nvidia-ml-py`` finds GPUs, each
visible GPU's utilisation, memory and power. The points go to the run index under keys
``sys/...`` with the sample's time in milliseconds as their step: they never collide with
step-keyed training points, and they are left out of set-aside, replay and ``verify``
comparisons and of the one-point-per-step invariants. Nothing runs on the training loop's
hot path. Missing NVML is not an error.
"""

from __future__ import annotations

import os
import time
from typing import Any

from workbench.store import TIME_KEYED_PREFIX

__all__ = ["SYS_PREFIX", "SystemSampler", "is_system_key"]

#: The key prefix of system metrics (the store keeps such keys against time).
SYS_PREFIX = TIME_KEYED_PREFIX


def is_system_key(key: str) -> bool:
    """Whether ``key`` is a system metric (stored against time, not a training step)."""
    return key.startswith(SYS_PREFIX)


class SystemSampler:
    """Samples one run's process tree (and the GPUs it may use).

    Args:
        root_pid: The run's training process (or ``torch.distributed.run``'s agent).
        every: Seconds between samples.
    """

    def __init__(self, root_pid: int, every: float = 5.0) -> None:
        import psutil

        self._psutil = psutil
        self.every = every
        self._root = root_pid
        self._procs: dict[int, Any] = {}
        self._next = time.monotonic()  # the first call samples (and primes the CPU counters)
        self._nvml: Any = None
        self._gpus: list[tuple[int, Any]] = []
        self._start_nvml()

    def _start_nvml(self) -> None:
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            count = pynvml.nvmlDeviceGetCount()
            wanted = range(count) if not visible else [int(i) for i in visible.split(",") if i.strip().isdigit()]
            self._gpus = [(i, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in wanted if i < count]
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - no NVML, no driver, no GPU: nothing to sample
            self._nvml = None
            self._gpus = []

    def due(self) -> bool:
        """Whether a sample is due now."""
        return time.monotonic() >= self._next

    def _tree(self) -> list[Any]:
        psutil = self._psutil
        try:
            root = self._procs.get(self._root) or psutil.Process(self._root)
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        alive = {}
        for proc in found:
            alive[proc.pid] = self._procs.get(proc.pid, proc)
        self._procs = alive
        return list(alive.values())

    def sample(self) -> list[tuple[str, float, int, float]]:
        """Take a sample: ``(key, value, step, wall_time)`` points (step = milliseconds)."""
        self._next = time.monotonic() + self.every
        psutil = self._psutil
        now = time.time()
        step = int(now * 1000)
        cpu = rss = 0.0
        for proc in self._tree():
            try:
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
        memory = psutil.virtual_memory()
        points = [
            ("sys/cpu_percent", cpu, step, now),
            ("sys/rss_mb", rss / 2**20, step, now),
            ("sys/memory_percent", float(memory.percent), step, now),
        ]
        for index, handle in self._gpus:
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                power = self._nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
            except Exception:  # noqa: BLE001 - a GPU that stops answering is skipped
                continue
            points += [
                (f"sys/gpu{index}/util_percent", float(util.gpu), step, now),
                (f"sys/gpu{index}/memory_mb", mem.used / 2**20, step, now),
                (f"sys/gpu{index}/power_w", power, step, now),
            ]
        return points

    def close(self) -> None:
        """Let NVML go."""
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass
            self._nvml = None
