"""The batch-leakage check (Train Manager's): samples of a batch must not see each other.

The gradient of one sample's output with respect to the *other* samples' inputs must be
zero. A wrong ``view``/``reshape``/``stack`` that mixes the batch dimension with another
one breaks that, and trains on without an error; this check catches it on the first batch.
"""

from __future__ import annotations

from typing import Any

import torch

from workbench.errors import WorkbenchError

__all__ = ["BatchLeakageCheck", "BatchLeakageError"]


class BatchLeakageError(WorkbenchError):
    """A sample's output depends on other samples of its batch."""


def _replace_input(batch: Any) -> tuple[torch.Tensor | None, Any]:
    """Find the batch's input tensor; return a grad-requiring copy and the batch around it."""
    if isinstance(batch, torch.Tensor):
        if batch.is_floating_point():
            x = batch.detach().clone().requires_grad_(True)
            return x, x
        return None, batch
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        x, _ = _replace_input(batch[0])
        if x is None:
            return None, batch
        rest = list(batch)
        rest[0] = x
        return x, type(batch)(rest) if not hasattr(batch, "_fields") else type(batch)(*rest)
    return None, batch


class BatchLeakageCheck:
    """Checks the first training batch for cross-sample leakage; raises if found.

    The model runs in eval mode for the check (so batch norm uses its running statistics,
    which is not leakage), under a forked RNG so training stays bit-for-bit as without it.

    Args:
        samples: How many samples of the batch to check (the first ones).
    """

    def __init__(self, samples: int = 2) -> None:
        self.samples = max(1, samples)
        self.done = False
        self.skipped = ""

    def before_batch(self, batch: Any, task: Any, model: torch.nn.Module, state: Any,
                     device: torch.device) -> None:
        """Run the check once, on the first batch."""
        if self.done:
            return
        self.done = True
        x, probe = _replace_input(batch)
        if x is None or x.dim() == 0 or x.shape[0] < 2:
            self.skipped = "the batch has no floating-point input tensor with 2 or more samples"
            return
        n = x.shape[0]
        devices = [device.index or 0] if device.type == "cuda" else []
        was_training = model.training
        with torch.random.fork_rng(devices=devices):
            model.eval()
            try:
                with torch.enable_grad():
                    out = task.forward(probe)
                    if isinstance(out, (list, tuple)):
                        out = out[0]
                    if not isinstance(out, torch.Tensor) or out.dim() == 0 or out.shape[0] != n:
                        self.skipped = "the model's output is not one row per sample"
                        return
                    for i in range(min(self.samples, n)):
                        (grad,) = torch.autograd.grad(out[i].float().sum(), x, retain_graph=True,
                                                      allow_unused=True)
                        if grad is None:
                            continue
                        per_sample = grad.detach().reshape(n, -1).abs().sum(dim=1)
                        per_sample[i] = 0
                        leaking = per_sample.nonzero().flatten().tolist()
                        if leaking:
                            shown = ", ".join(map(str, leaking[:8])) + (" …" if len(leaking) > 8 else "")
                            raise BatchLeakageError(
                                f"batch leakage: the output of sample {i} depends on the inputs of "
                                f"samples {shown} of the same batch (step {state.step}); a view, "
                                "reshape or stack likely mixes the batch dimension"
                            )
            finally:
                model.train(was_training)
