"""Where training stands, and the checkpoint that lets it continue exactly from there.

:class:`TrainState` holds the counters the loop advances. :func:`checkpoint_of` collects
everything a task needs to continue as if nothing had happened — weights, optimiser,
scheduler, grad scaler, every RNG state, the position, the extensions' state — as tensors
and plain containers, so that ``torch.load(..., weights_only=True)`` reads it back;
:func:`restore_checkpoint` puts it back. ``Task.checkpoint_state()`` and ``Task.restore()``
are the public doors to both.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy
import torch

if TYPE_CHECKING:
    from workbench.core.task import Task

__all__ = [
    "CHECKPOINT_FORMAT",
    "TrainState",
    "checkpoint_of",
    "extension_keys",
    "restore_checkpoint",
    "rng_state",
    "seed_everything",
    "set_rng_state",
]

#: The version of the checkpoint layout :func:`checkpoint_of` writes.
CHECKPOINT_FORMAT = 1


@dataclass
class TrainState:
    """Where training stands: what checkpoints save and progress reports.

    Attributes:
        step: Training batches completed (the x axis of every curve).
        epoch: The current epoch (0-based).
        batch_in_epoch: Batches completed in the current epoch.
        optimizer_steps: Optimiser updates made (differs from step with accumulation).
        max_epochs: Epochs ``fit`` runs.
        total_steps: ``max_epochs`` × batches per epoch, or None if the loader has no length.
        stop_requested: Set by :meth:`Task.request_stop`; the loop ends after this batch.
        stop_reason: Why it was asked to stop.
        stopped_early: Whether ``fit`` ended because a stop was requested.
        batch_step: While a training batch runs, the step it completes (``step + 1``
            until the loop counts it); None between batches.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    optimizer_steps: int = 0
    max_epochs: int = 1
    total_steps: int | None = None
    stop_requested: bool = False
    stop_reason: str = ""
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    batch_step: int | None = None

    @property
    def current_step(self) -> int:
        """The step a value logged now belongs to: the running batch's, else ``step``."""
        return self.step if self.batch_step is None else self.batch_step

    @property
    def epoch_length(self) -> int | None:
        """Batches per epoch, or None when the loader has no length."""
        total = self.total_steps
        return total // self.max_epochs if total else None

    def state_dict(self) -> dict[str, Any]:
        """The counters, as plain values."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in ("stop_requested", "stop_reason", "stopped_early", "batch_step")}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the counters."""
        for key, value in state.items():
            if hasattr(self, key) and key != "batch_step":
                setattr(self, key, value)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (CPU and CUDA)."""
    random.seed(seed)
    numpy.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG state of this process (Python, NumPy, torch, CUDA), as tensors and plain values."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    kind, keys, pos, has_gauss, cached = numpy.random.get_state()
    state["numpy"] = {"kind": kind, "keys": torch.from_numpy(keys.astype("int64")),
                      "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (a state without NumPy's leaves NumPy as is)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        n = state["numpy"]
        numpy.random.set_state((n["kind"], n["keys"].numpy().astype("uint32"), n["pos"],
                                n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def extension_keys(extensions: Iterable[object]) -> list[tuple[str, object]]:
    """Name each extension for the checkpoint: its class name, ``Name#2`` for a second one."""
    seen: dict[str, int] = {}
    keys = []
    for ext in extensions:
        name = type(ext).__name__
        seen[name] = seen.get(name, 0) + 1
        keys.append((name if seen[name] == 1 else f"{name}#{seen[name]}", ext))
    return keys


def checkpoint_of(task: Task) -> dict[str, Any]:
    """Everything ``task`` (set up) needs to continue exactly from here.

    See :meth:`Task.checkpoint_state <workbench.core.task.Task.checkpoint_state>`.
    """
    backend = task.backend
    extensions = {}
    for key, ext in extension_keys(task.hooks.extensions):
        if hasattr(ext, "state_dict"):
            extensions[key] = ext.state_dict()
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": task.raw_model.state_dict(),
        "optimizer": task.optimizer.state_dict(),
        "scheduler": task.scheduler.state_dict() if task.scheduler is not None else None,
        "scaler": task.precision.state_dict(),
        "rng": backend.gather_object(rng_state()),
        "state": task.state.state_dict(),
        "extensions": extensions,
        "task": task.state_dict(),
        "metrics": dict(task.metrics),
        "world_size": backend.world_size,
    }
    done, accumulate = task.state.batch_in_epoch, task.accumulate_grad_batches
    if done % accumulate and done != task.state.epoch_length:
        # Mid-way through a gradient-accumulation window: the gradients added up so far
        # are part of the next update (the same in every process: DDP averages each
        # backward's).
        state["grads"] = {name: p.grad.detach().clone() for name, p in task.raw_model.named_parameters()
                          if p.grad is not None}
    if backend.world_size > 1:
        # An extension's state may be this process's own (the running epoch mean of
        # its share of the batches): every process gets its own back on restore.
        state["extensions_by_rank"] = backend.gather_object(extensions)
        # So is the task's own (an LSTM's hidden state is of this process's batches).
        state["task_by_rank"] = backend.gather_object(_to_cpu(state["task"]))
    return state


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def restore_checkpoint(task: Task, checkpoint: Mapping[str, Any], *, fork: bool = False) -> None:
    """Put what :func:`checkpoint_of` collected back into ``task`` (set up).

    See :meth:`Task.restore <workbench.core.task.Task.restore>`.
    """
    backend, model, optimizer = task.backend, task.raw_model, task.optimizer
    model.load_state_dict(checkpoint["model"])
    if fork:
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        optimizer.load_state_dict(checkpoint["optimizer"])
        for group, settings in zip(optimizer.param_groups, fresh):
            group.update(settings)
    else:
        optimizer.load_state_dict(checkpoint["optimizer"])
        if task.scheduler is not None and checkpoint.get("scheduler") is not None:
            task.scheduler.load_state_dict(checkpoint["scheduler"])
    task.precision.load_state_dict(checkpoint.get("scaler") or {})
    task.state.load_state_dict(checkpoint["state"])
    grads = checkpoint.get("grads") or {}
    for name, param in model.named_parameters():
        param.grad = grads[name].to(param.device).clone() if name in grads else None
    saved = checkpoint.get("extensions") or {}
    by_rank = checkpoint.get("extensions_by_rank") or []
    if checkpoint.get("world_size") == backend.world_size and backend.rank < len(by_rank):
        saved = by_rank[backend.rank] or {}
    for key, ext in extension_keys(task.hooks.extensions):
        if key in saved and hasattr(ext, "load_state_dict"):
            ext.load_state_dict(saved[key])
    own = checkpoint.get("task") or {}
    own_by_rank = checkpoint.get("task_by_rank") or []
    if checkpoint.get("world_size") == backend.world_size and backend.rank < len(own_by_rank):
        own = own_by_rank[backend.rank] or {}
    if own:
        task.load_state_dict(own)
    task.metrics.update(checkpoint.get("metrics") or {})
    states = checkpoint.get("rng") or []
    if states:
        set_rng_state(states[backend.rank] if backend.rank < len(states) else states[0])
