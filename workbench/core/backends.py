"""Trainer backends: how the model, the data and the numbers are spread over processes.

As PyMarlin's ``TrainerBackend``, the trainer never asks "am I distributed?": it asks its
backend to place the model, to wrap a loader, to average a few numbers, and whether this
process is the one that writes (rank 0).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from workbench.core.data import EpochSampler
from workbench.core.devices import DeviceError, resolve_device

__all__ = ["Backend", "DDPBackend", "SingleBackend", "make_backend"]


class Backend:
    """One process, one device. Subclasses spread the work over several processes.

    Attributes:
        name: ``single`` or ``ddp``.
        rank: This process's rank (0 for a single process).
        world_size: How many processes train together.
        device: The device this process trains on (set by :meth:`setup`).
    """

    name = "single"
    rank = 0
    local_rank = 0
    world_size = 1
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this process writes the index, checkpoints and artifacts (rank 0)."""
        return self.rank == 0

    def setup(self, device: str | torch.device) -> torch.device:
        """Resolve and remember the device this process trains on."""
        self.device = resolve_device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        return self.device

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move the model to the device and wrap it as the backend needs."""
        return model.to(self.device)

    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The plain module inside whatever :meth:`wrap_model` returned."""
        return getattr(model, "module", model) if self.world_size > 1 else model

    def prepare_loader(self, loader: Any, *, shuffle: bool, seed: int = 0) -> Any:
        """Return the loader this process iterates (a single process takes it as it is)."""
        return loader

    def set_epoch(self, loader: Any, epoch: int) -> None:
        """Tell the loader's sampler which epoch starts, so shuffling differs per epoch."""
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average a few numbers over all processes (a single process returns them)."""
        return values

    def agree(self, flag: bool) -> bool:
        """True if ``flag`` is true in any process (so all take the same branch)."""
        return flag

    def gather_object(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, indexed by rank (on every process)."""
        return [obj]

    def barrier(self) -> None:
        """Wait for every process (a no-op for one)."""

    def teardown(self) -> None:
        """Release what :meth:`setup` took."""


SingleBackend = Backend


class DDPBackend(Backend):
    """DistributedDataParallel over ``torch.distributed``: gloo on CPU, nccl on CUDA.

    Expects the environment ``torch.distributed.run`` sets (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
    """

    name = "ddp"

    def __init__(self) -> None:
        missing = [k for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if k not in os.environ]
        if missing:
            raise DeviceError(
                "backend 'ddp' needs the environment of torch.distributed.run "
                f"(missing {', '.join(missing)}); launch it with `workbench run --backend ddp`"
            )
        self.rank = int(os.environ["RANK"])
        self.world_size = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ["LOCAL_RANK"])
        self._owns_group = False

    def setup(self, device: str | torch.device) -> torch.device:
        """Pick this rank's device and join the process group."""
        spec = str(device)
        if spec in ("auto", "cuda") and torch.cuda.is_available():
            spec = f"cuda:{self.local_rank}"
        self.device = resolve_device(spec)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)
            self._owns_group = True
        return self.device

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move the model to this rank's device and wrap it in DDP."""
        model = model.to(self.device)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def prepare_loader(self, loader: Any, *, shuffle: bool, seed: int = 0) -> Any:
        """Rebuild the loader around a ``DistributedSampler`` over this rank's share."""
        if loader is None or not isinstance(loader, DataLoader):
            return loader
        if isinstance(loader.sampler, DistributedSampler):
            return loader
        if isinstance(loader.sampler, EpochSampler):
            shuffle, seed = loader.sampler.shuffle, loader.sampler.seed
        sampler = DistributedSampler(
            loader.dataset, num_replicas=self.world_size, rank=self.rank,
            shuffle=shuffle, seed=seed, drop_last=loader.drop_last,
        )
        return DataLoader(
            loader.dataset, batch_size=loader.batch_size, sampler=sampler,
            num_workers=loader.num_workers, collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory, drop_last=loader.drop_last,
            worker_init_fn=loader.worker_init_fn,
        )

    def reduce_mean(self, values: dict[str, float]) -> dict[str, float]:
        """All-reduce the values and divide by the world size."""
        if not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                              device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(tensor)
        tensor /= self.world_size
        return dict(zip(keys, tensor.tolist()))

    def agree(self, flag: bool) -> bool:
        """All-reduce a flag (max): true everywhere if true anywhere."""
        tensor = torch.tensor([1 if flag else 0], device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return bool(tensor.item())

    def gather_object(self, obj: Any) -> list[Any]:
        """All-gather a picklable object from every rank."""
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        """Wait for every rank."""
        if torch.distributed.is_initialized():
            torch.distributed.barrier()

    def teardown(self) -> None:
        """Leave the process group if this backend joined it."""
        if self._owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self._owns_group = False


def make_backend(name: str) -> Backend:
    """The backend called ``name`` (``single`` or ``ddp``)."""
    if name == "single":
        return SingleBackend()
    if name == "ddp":
        return DDPBackend()
    raise DeviceError(f"unknown backend {name!r}; expected single or ddp")
