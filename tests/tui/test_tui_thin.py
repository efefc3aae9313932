"""The app's numpy thinning of a live curve gives exactly the store's downsampled points."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from workbench.store import downsample
from workbench.tui._thin import thin


def _same(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    return len(a) == len(b) and all(
        xa == xb and (va == vb or (math.isnan(va) and math.isnan(vb))) for (xa, va), (xb, vb) in zip(a, b))


def _curve(rng: random.Random, n: int, axis: str) -> list[tuple[float, float]]:
    xs: list[float] = []
    x = rng.choice([0.0, 1.0, 1e9, 1.7e9])
    for _ in range(n):
        # Steps strictly rise; wall times may repeat (a batch logged at once).
        x += rng.choice([0.0, 0.5, 1.0, 7.0]) if axis == "time" else rng.choice([1.0, 2.0, 50.0])
        xs.append(x)
    values = [rng.choice([0.1, 0.2, 0.3]) if rng.random() < 0.3 else rng.gauss(0, 1) for _ in range(n)]
    for i in rng.sample(range(n), k=n // 10):
        values[i] = math.nan if rng.random() < 0.8 else rng.choice([math.inf, -math.inf])
    if rng.random() < 0.1:  # a bucket of NaN only
        for i in range(n // 3, n // 2):
            values[i] = math.nan
    return list(zip(xs, values))


@pytest.mark.parametrize("axis", ["step", "time"])
def test_thin_keeps_the_points_the_store_keeps(axis: str) -> None:
    rng = random.Random(7)
    for case in range(400):
        n = rng.choice([5, 20, 117, 250, 1000])
        points = _curve(rng, n, axis)
        width = rng.choice([3, 4, 16, 58, 120])
        xy = np.array(points, dtype=np.float64).reshape(-1, 2)
        assert _same(thin(points, xy, width, axis), downsample(points, width, axis)), (case, axis, n, width)


def test_points_out_of_x_order_are_thinned_by_the_store_itself() -> None:
    points = [(3.0, 1.0), (1.0, 2.0), (2.0, 0.5)] * 10
    xy = np.array(points, dtype=np.float64)
    assert thin(points, xy, 6, "time") == downsample(points, 6, "time")
