"""Thinning a live curve the app holds, with numpy: :func:`workbench.store.downsample`'s rule.

A curve the app extends tick by tick is thinned back to its chart's width whenever it grows
past twice that (about every sixth tick of a fast run, for each of a grid's 72 curves). The
store's ``downsample`` does it point by point in Python; :func:`thin` gives the same points
from the curve's array in a few numpy calls. Same rule: ``max_points // 3`` buckets of equal
width along x, from the first point's x to the last's; each keeps its last point, and its
minimum and maximum (NaN skipped, the first of equal values), in x order, one point per x.
"""

from __future__ import annotations

from typing import Any

from workbench.store import downsample

__all__ = ["thin"]


def thin(points: list[tuple[float, float]], xy: Any, max_points: int, axis: str = "step") -> list[tuple[float, float]]:
    """``downsample(points, max_points, axis)``, from ``xy`` (the same points as an ``(n, 2)``
    array). Points not in x order go to ``downsample`` itself."""
    import numpy as np

    n = len(points)
    if n <= max_points:
        return list(points)
    x, v = xy[:, 0], xy[:, 1]
    if not np.all(x[1:] >= x[:-1]) or np.isnan(x).any():
        return downsample(points, max_points, axis)
    buckets = max(1, max_points // 3)
    start = float(x[0])
    # (The same float operations, in the same order, as the store's rule.)
    span = max(float(x.max()) - start, 1e-9) if axis == "time" else float(x[-1]) - start + 1
    bucket = np.minimum(buckets - 1, np.maximum(0, ((x - start) * buckets / span).astype(np.int64)))
    index = np.arange(n)
    # Each bucket's last point (x is sorted, so a bucket's points are consecutive).
    last = np.flatnonzero(np.append(bucket[1:] != bucket[:-1], True))
    # Its minimum and maximum among the numbers: the first of equal values.
    number = np.flatnonzero(~np.isnan(v))
    order_min = number[np.lexsort((index[number], v[number], bucket[number]))]
    order_max = number[np.lexsort((index[number], -v[number], bucket[number]))]
    first = np.append(True, bucket[order_min][1:] != bucket[order_min][:-1]) if len(number) else np.zeros(0, bool)
    lows, highs = order_min[first], order_max[first]
    # The store writes each bucket's last, then its min, then its max into a dict keyed by x:
    # a later one of the same x wins (ordered by bucket, then that role).
    roles = np.concatenate([last, lows, highs])
    sequence = np.concatenate([bucket[last] * 3, bucket[lows] * 3 + 1, bucket[highs] * 3 + 2])
    xs = x[roles]
    order = np.lexsort((sequence, xs))
    xs, roles = xs[order], roles[order]
    keep = np.append(xs[1:] != xs[:-1], True)  # the last written of each x
    chosen = roles[keep]
    return list(zip(x[chosen].tolist(), v[chosen].tolist()))
