"""GradientStats: per-layer and total gradient norms."""

from __future__ import annotations

import math

import pytest
import torch
from ext_tasks import make_task

from workbench.extensions import GradientStats
from workbench.sinks import MemorySink


def test_gradient_stats_logs_each_layers_norm_and_the_total() -> None:
    sink = MemorySink()
    task = make_task(epochs=1, samples=32, sink=sink, extensions=[GradientStats(every=1)])
    task.fit()
    keys = {k for k in sink.points if k.startswith("grad_norm/")}
    assert keys == {"grad_norm/0", "grad_norm/3", "grad_norm/total"}  # the two Linear layers
    for key in keys:
        assert [s for s, _ in sink.series(key)] == [1, 2, 3, 4]
    # The last step's gradients are still on the parameters: the norms must match them.
    model = task.raw_model
    for layer in ("0", "3"):
        grads = torch.cat([p.grad.flatten() for p in model[int(layer)].parameters()])
        assert sink.series(f"grad_norm/{layer}")[-1][1] == pytest.approx(torch.linalg.vector_norm(grads).item())
    first, last = sink.series("grad_norm/0")[-1][1], sink.series("grad_norm/3")[-1][1]
    assert sink.series("grad_norm/total")[-1][1] == pytest.approx(math.hypot(first, last))


def test_gradient_stats_logs_every_n_steps() -> None:
    sink = MemorySink()
    make_task(epochs=2, samples=32, sink=sink, extensions=[GradientStats(every=3)]).fit()
    assert [s for s, _ in sink.series("grad_norm/total")] == [3, 6]
