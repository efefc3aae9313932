"""Text for the screens: durations, ages, progress, git commits, metric values.

Pure functions of a run row (and a clock, so that snapshot tests are deterministic).
"""

from __future__ import annotations

import math
import time
from typing import Any

__all__ = [
    "HEADLINE_KEYS",
    "STATUS_GLYPHS",
    "age",
    "better_is_higher",
    "duration",
    "flatten",
    "git_short",
    "headline_key",
    "human_size",
    "metric",
    "percent",
    "progress_bar",
    "seconds",
    "tilde",
    "value_text",
    "when",
]

#: One glyph per status, shown before the name in every table.
STATUS_GLYPHS = {
    "queued": "…",
    "running": "▶",
    "completed": "✓",
    "failed": "✗",
    "stopped": "⏸",
    "interrupted": "↯",
}

#: The metric a run's row shows, first match wins; else the first key in sorted order.
HEADLINE_KEYS = ("val/loss", "valid/loss", "validation/loss", "loss", "train/loss", "train/loss_epoch")

_HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "auc", "precision", "recall", "iou", "dice",
                     "bleu", "score", "reward", "r2", "samples_per_s", "map")


def headline_key(keys: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The metric to show in a run's row: validation loss when there is one."""
    have = set(keys)
    for key in HEADLINE_KEYS:
        if key in have:
            return key
    for key in sorted(have):
        if "loss" in key:
            return key
    return min(have) if have else None


def better_is_higher(key: str) -> bool:
    """Whether a larger value of ``key`` is better (accuracy) or a smaller one (loss)."""
    leaf = key.rsplit("/", 1)[-1].lower()
    return any(leaf == word or leaf.startswith(word + "_") or leaf.endswith("_" + word)
               for word in _HIGHER_IS_BETTER)


def duration(row: dict[str, Any], now: float) -> str:
    """How long the run ran (until ``now`` while it is live), e.g. ``4m07s``."""
    start = row.get("started_at")
    if start is None:
        return "—"
    end = row.get("ended_at")
    if end is None:
        end = now if row.get("status") in ("running", "queued") else start
    return seconds(max(0.0, end - start))


def seconds(value: float | None) -> str:
    """``42s``, ``4m07s``, ``3h12m``, ``2d04h``."""
    if value is None:
        return "—"
    value = int(value)
    if value < 60:
        return f"{value}s"
    if value < 3600:
        return f"{value // 60}m{value % 60:02d}s"
    if value < 86400:
        return f"{value // 3600}h{value % 3600 // 60:02d}m"
    return f"{value // 86400}d{value % 86400 // 3600:02d}h"


def age(ts: float | None, now: float) -> str:
    """When something happened, relative to ``now``: ``12s ago``, ``3h ago``, ``Nov 21``."""
    if ts is None:
        return "—"
    delta = max(0.0, now - ts)
    if delta < 60:
        return f"{int(delta)}s ago"
    if delta < 3600:
        return f"{int(delta // 60)}m ago"
    if delta < 86400:
        return f"{int(delta // 3600)}h ago"
    return time.strftime("%b %d", time.localtime(ts))


def when(ts: float | None) -> str:
    """A full local time, ``2026-11-22 03:10:14``."""
    if ts is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def percent(row: dict[str, Any]) -> float | None:
    """Progress as a fraction in [0, 1], or None when the total is unknown."""
    step, total = row.get("step"), row.get("total_steps")
    if step is None or not total:
        return 1.0 if row.get("status") == "completed" else None
    return max(0.0, min(1.0, step / total))


def progress_bar(row: dict[str, Any], width: int = 4) -> str:
    """A small bar and the percent: ``██▌ 62%``; the step when the total is unknown."""
    fraction = percent(row)
    if fraction is None:
        step = row.get("step")
        return "—" if step is None else f"step {step}"
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")
    return f"{bar:<{width}}{100 * fraction:4.0f}%"


def git_short(row: dict[str, Any]) -> str:
    """The HEAD commit's first 4 hex digits, with ``*`` when the tree was dirty."""
    head = row.get("git_head") or row.get("snapshot_commit")
    if not head:
        return "—"
    return head[:4] + ("*" if row.get("git_dirty") else "")


def metric(value: float | None) -> str:
    """A metric value in at most 7 characters: ``0.0412``, ``1.2e-05``, ``1234.5``."""
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude < 1e-3 or magnitude >= 1e5:
        return f"{value:.1e}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.4g}"
    return f"{value:.4f}"


def value_text(value: Any) -> str:
    """A config value as a person would type it on the command line (TOML-like)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def flatten(config: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: ``{"optim": {"lr": 1}}`` → ``{"optim.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def tilde(path: str | None) -> str:
    """A path with the home folder written ``~``."""
    if not path:
        return "—"
    import os.path

    home = os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home.rstrip("/") + "/")):
        return "~" + path[len(home.rstrip("/")):]
    return path


def human_size(size: int | None) -> str:
    """``532 B``, ``12.4 KiB``, ``3.1 MiB``."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover
