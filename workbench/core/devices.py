"""Devices and numeric precision, in-process (this module imports torch).

The workbench process never imports this: it learns which devices exist from a probe
subprocess (``python -m workbench.core.devices``), which prints :func:`probe` as JSON.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, ContextManager

import torch

from workbench.errors import WorkbenchError

__all__ = [
    "DEVICE_CHOICES",
    "PRECISIONS",
    "DeviceError",
    "Precision",
    "available_devices",
    "probe",
    "resolve_device",
]

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


class DeviceError(WorkbenchError):
    """The requested device or precision does not exist on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """The devices this machine has: ``cpu``, then ``cuda:0`` … and ``mps`` if present."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    return devices


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` into a device that exists.

    ``auto`` picks cuda, then mps, then cpu.

    Raises:
        DeviceError: The device is unknown or not present; the message names those that are.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    have = ", ".join(available_devices())
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise DeviceError(f"device 'mps' is not available on this machine; available: {have}")
        return torch.device("mps")
    if spec == "cuda" or spec.startswith("cuda:"):
        index_text = spec.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise DeviceError(f"bad device {spec!r}: expected cuda or cuda:N with N a number")
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} is not available on this machine; available: {have}")
        index = int(index_text)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {spec!r} does not exist; available: {have}")
        return torch.device("cuda", index)
    raise DeviceError(f"unknown device {spec!r}; expected one of {', '.join(DEVICE_CHOICES)}")


@dataclass
class Precision:
    """Mixed-precision policy: an autocast context and, for float16, a gradient scaler.

    Args:
        name: ``32`` (full precision), ``bf16-mixed`` or ``16-mixed``.
        device: The device the model runs on.
    """

    name: str
    device: torch.device

    def __post_init__(self) -> None:
        self.name = str(self.name)
        if self.name not in PRECISIONS:
            raise DeviceError(
                f"unknown precision {self.name!r}; expected one of {', '.join(PRECISIONS)}"
            )
        kind = self.device.type
        if self.name == "bf16-mixed" and kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeviceError(f"precision 'bf16-mixed' is not supported by {self.device}")
        self.dtype = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}[self.name]
        self.scaler: Any = None
        if self.name == "16-mixed":
            self.scaler = torch.amp.GradScaler(kind, enabled=kind in ("cuda", "cpu", "mps"))

    def autocast(self) -> ContextManager[Any]:
        """The context the forward pass and loss run in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def state_dict(self) -> dict[str, Any]:
        """The grad scaler's state (empty without one)."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the grad scaler's state."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def probe() -> dict[str, Any]:
    """What this machine offers, as the workbench process's device probe reports it."""
    info: dict[str, Any] = {
        "devices": available_devices(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "default": str(resolve_device("auto")),
        "bf16": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        "distributed": torch.distributed.is_available(),
        "nccl": bool(torch.distributed.is_available() and torch.distributed.is_nccl_available()),
    }
    if torch.cuda.is_available():
        info["names"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    print(json.dumps(probe()))
