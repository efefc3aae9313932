"""Tiny, real training tasks for the core and extension tests: a few dozen samples, a few
steps, CPU only. A folder's own task module (``core_tasks``, ``ext_tasks``) defines its
task on these pieces."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import TensorDataset

from workbench import Task

__all__ = ["make_task", "regression_data", "same_weights", "weights"]

#: What :func:`make_task` hands to the task itself rather than to its Config.
_TASK_ARGUMENTS = ("device", "precision", "run_dir", "sink", "extensions")


def regression_data(n: int, seed: int, features: int = 3, *, weighted: bool = True) -> TensorDataset:
    """``n`` samples of a noisy linear function of ``features`` inputs.

    Args:
        n: How many samples.
        seed: The seed of the samples and their noise.
        features: How many inputs.
        weighted: Input ``i`` weighs ``i + 1``; otherwise the target is their plain sum.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    if weighted:
        signal = x @ torch.arange(1.0, features + 1).unsqueeze(1)
    else:
        signal = x.sum(dim=1, keepdim=True)
    return TensorDataset(x, signal + 0.1 * torch.randn(n, 1, generator=g))


def make_task(cls: type[Task], **config: Any) -> Task:
    """A task of ``cls`` on the CPU (unless ``device`` says otherwise) with ``config``
    overriding its Config defaults; ``precision``, ``run_dir``, ``sink`` and ``extensions``
    go to the task."""
    kwargs = {k: config.pop(k) for k in _TASK_ARGUMENTS if k in config}
    kwargs.setdefault("device", "cpu")
    return cls(cls.Config(**config), **kwargs)


def weights(task: Task) -> dict[str, torch.Tensor]:
    """A copy of the task's model weights."""
    return {k: v.detach().clone() for k, v in task.raw_model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two state dicts hold the same keys and bit-identical tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
