"""Gradient statistics: per-layer gradient norms as metrics."""

from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["GradientStats"]


class GradientStats:
    """Logs the gradient norm of each layer (``grad_norm/<layer>``) and in total.

    Vanishing gradients show as layers whose norm falls towards zero; exploding ones as
    a total that jumps by orders of magnitude. Norms are read after the backward pass and
    any clipping, before the next batch clears them.

    Args:
        every: Log every this many steps.
    """

    def __init__(self, every: int = 50) -> None:
        self.every = max(1, every)

    def after_batch(self, model: torch.nn.Module, backend: Any, state: Any,
                    log: Callable[..., None]) -> None:
        """Compute and log the norms on the steps it is due."""
        if state.step % self.every:
            return
        groups: dict[str, list[torch.Tensor]] = {}
        for name, param in backend.unwrap(model).named_parameters():
            if param.grad is not None:
                layer = name.rpartition(".")[0] or name
                groups.setdefault(layer, []).append(param.grad.detach().flatten())
        if not groups:
            return
        total = 0.0
        for layer, grads in groups.items():
            norm = torch.linalg.vector_norm(torch.cat(grads)).item()
            total += norm * norm
            log(f"grad_norm/{layer}", norm)
        log("grad_norm/total", total ** 0.5)
