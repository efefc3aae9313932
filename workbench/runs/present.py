"""How runs read to people, shared by the CLI and the app.

Durations, ages, progress, git commits, metric and config values, and the stable JSON
shape of a run (``--json`` output; documented in docs/cli.md). Pure functions of a
:class:`~workbench.store.Run` (and a clock where it matters, so tests are deterministic).
"""

from __future__ import annotations

import datetime
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.store import Run, RunStatus, RunStep

__all__ = [
    "HEADLINE_KEYS",
    "STATUS_GLYPHS",
    "age",
    "better_is_higher",
    "duration",
    "duration_s",
    "evaluation_record",
    "flatten_config",
    "git_short",
    "headline_key",
    "human_size",
    "iso",
    "metric",
    "percent",
    "progress_bar",
    "progress_text",
    "run_record",
    "seconds",
    "step_record",
    "steps_text",
    "sweep_status",
    "tilde",
    "value_text",
    "waiting_text",
    "when",
]


def resolved_device(run_dir: str | Path | None) -> str | None:
    """The device a run's training process chose for ``auto``: its reproducibility record's
    (``artifacts/reproducibility.json``, written by each attempt as the task is set up), or
    None (not set up yet, or no such record)."""
    if not run_dir:
        return None
    try:
        with open(Path(run_dir) / "artifacts" / "reproducibility.json", encoding="utf-8") as fh:
            device = json.load(fh).get("device")
    except (OSError, ValueError, AttributeError):
        return None
    return device if isinstance(device, str) and device else None


def chosen_device(run: Run) -> str:
    """The device a run trains on: the one ``auto`` chose once known, else as launched."""
    if run.device == "auto" and run.status is not RunStatus.QUEUED:
        return resolved_device(run.run_dir) or "auto"
    return run.device or "—"


def iso(ts: float | None) -> str | None:
    """A unix time as ISO 8601 in UTC (``2026-11-22T03:05:05Z``), or None."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_record(run: Run, metrics: Mapping[str, float] | None = None,
               artifacts: int | None = None) -> dict[str, Any]:
    """A run as the CLI's ``--json`` prints it."""
    record: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "task": run.task,
        "kind": run.kind,
        "command": list(run.command),
        "status": run.status.value,
        "device": run.device,
        "resolved_device": chosen_device(run) if run.device == "auto" else run.device,
        "backend": run.backend,
        "nproc": run.nproc,
        "precision": run.precision,
        "config": dict(run.config),
        "tags": list(run.tags),
        "profile": run.profile,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "duration_s": duration_s(run),
        "attempt": run.attempt,
        "run_dir": run.run_dir,
        "exit_code": run.exit_code,
        "signal": run.signal,
        "error": run.error,
        "progress": {"step": run.step, "total": run.total_steps, "epoch": run.epoch},
        "git": {"head": run.git_head, "branch": run.git_branch,
                "dirty": run.git_dirty, "snapshot": run.snapshot_commit},
        "parent": run.parent_id,
        "checkpoint": run.parent_checkpoint,
        "overrides": dict(run.overrides),
        "stop": None if run.stop_requested_at is None else {
            "requested_at": iso(run.stop_requested_at),
            "mode": None if run.stop_mode is None else run.stop_mode.value,
            "reason": run.stop_reason,
        },
        "metrics": dict(metrics or {}),
    }
    if artifacts is not None:
        record["artifacts"] = artifacts
    return record


def evaluation_record(evaluation: Run, verb: str, checkpoint: str,
                      metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
    """An evaluation as it is listed under its run (``show --json``'s ``evaluations``).

    Args:
        evaluation: The evaluation (a run of kind ``evaluation``).
        verb: What it ran: ``test`` or ``evaluate``.
        checkpoint: The checkpoint as people name it (``last (step 120)``, ``best``, ``step 60``).
        metrics: Its last metric values (``sys/*`` are left out).
    """
    return {
        "id": evaluation.id,
        "name": evaluation.name,
        "verb": verb,
        "checkpoint": checkpoint,
        "checkpoint_path": evaluation.parent_checkpoint,
        "at_step": evaluation.step,
        "overrides": dict(evaluation.overrides),
        "status": evaluation.status.value,
        "created_at": iso(evaluation.created_at),
        "error": evaluation.error,
        "metrics": {k: v for k, v in (metrics or {}).items() if not k.startswith("sys/")},
    }


#: One glyph per status, shown before the name in every table.
STATUS_GLYPHS = {
    RunStatus.QUEUED: "…",
    RunStatus.RUNNING: "▶",
    RunStatus.COMPLETED: "✓",
    RunStatus.FAILED: "✗",
    RunStatus.STOPPED: "⏸",
    RunStatus.INTERRUPTED: "↯",
    RunStatus.PRUNED: "✂",
}

#: The metric a run's row shows, first match wins; else the first key in sorted order.
HEADLINE_KEYS = ("val/loss", "valid/loss", "validation/loss", "loss", "train/loss", "train/loss_epoch")

_HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "auc", "precision", "recall", "iou", "dice",
                     "bleu", "score", "reward", "r2", "samples_per_s", "map")


def step_record(step: RunStep) -> dict[str, Any]:
    """One pipeline step as ``show --json`` lists it under ``steps``."""
    return {
        "name": step.name,
        "status": step.status.value,
        "attempt": step.attempt,
        "started_at": iso(step.started_at),
        "ended_at": iso(step.ended_at),
        "duration_s": None if step.started_at is None or step.ended_at is None
        else round(step.ended_at - step.started_at, 3),
        "error": step.error,
    }


#: How a step's status reads in one line of text.
_STEP_MARKS = {"completed": "✓", "running": "●", "pending": "·", "failed": "✗", "stopped": "■",
               "interrupted": "!"}


def steps_text(steps: Sequence[RunStep], now: float | None = None) -> str:
    """A pipeline in one line: ``fit ✓ 1m02s (attempt 1) → test ● running → evaluate · pending``."""
    now = time.time() if now is None else now
    parts = []
    for step in steps:
        status = step.status.value
        text = f"{step.name} {_STEP_MARKS.get(status, '?')} "
        if step.started_at is not None and status != "pending":
            took = seconds((step.ended_at or now) - step.started_at)
            text += took if status == "completed" else f"{status} {took}"
        else:
            text += status
        if step.attempt and step.attempt > 1:
            text += f" (attempt {step.attempt})"
        parts.append(text)
    return " → ".join(parts)


def headline_key(keys: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The metric to show in a run's row: validation loss when there is one; never a system
    metric (``sys/*``: the machine's, not the model's)."""
    have = {key for key in keys if not key.startswith("sys/")}
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


def duration_s(run: Run, now: float | None = None) -> float | None:
    """Seconds the run has been running (until ``now`` while it is live), or None."""
    if run.started_at is None:
        return None
    end = run.ended_at
    if end is None:
        end = (time.time() if now is None else now) if run.status.is_live else run.started_at
    return max(0.0, end - run.started_at)


def duration(run: Run, now: float | None = None) -> str:
    """How long the run ran (until ``now`` while it is live), e.g. ``4m07s``."""
    return seconds(duration_s(run, now))


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


def percent(run: Run) -> float | None:
    """Progress as a fraction in [0, 1], or None when the total is unknown."""
    step, total = run.step, run.total_steps
    if step is None or not total or total < 0:
        return 1.0 if run.status is RunStatus.COMPLETED else None
    return max(0.0, min(1.0, step / total))


def progress_text(run: Run) -> str:
    """``62% 840/1440``, the bare step when the total is unknown, or ``—``."""
    fraction = percent(run)
    if run.step is None:
        return "—" if fraction is None else f"{100 * fraction:3.0f}%"
    if fraction is None or not run.total_steps:
        return f"step {run.step}"
    return f"{100 * fraction:3.0f}% {run.step}/{run.total_steps}"


def progress_bar(run: Run, width: int = 4) -> str:
    """A small bar and the percent: ``██▌ 62%``; the step when the total is unknown."""
    fraction = percent(run)
    if fraction is None:
        return "—" if run.step is None else f"step {run.step}"
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")
    return f"{bar:<{width}}{100 * fraction:4.0f}%"


def waiting_text(run: Run) -> str | None:
    """Why a queued run waits, short enough for a table cell: ``Resources`` for a Slurm job
    ``PENDING (Resources)``, ``submitted``, or the local queue's reason; None when it does
    not wait or nobody said why."""
    reason = (run.status_reason or "").strip()
    if run.status is not RunStatus.QUEUED or not reason:
        return None
    if reason.startswith("slurm job "):
        reason = reason.split(":", 1)[-1].strip()
        if "(" in reason and reason.endswith(")"):
            return reason[reason.index("(") + 1:-1] or reason
    return reason


def git_short(run: Run) -> str:
    """The HEAD commit's first 4 hex digits, with ``*`` when the tree was dirty."""
    head = run.git_head or run.snapshot_commit
    if not head:
        return "—"
    return head[:4] + ("*" if run.git_dirty else "")


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


def flatten_config(config: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: ``{"optim": {"lr": 1}}`` → ``{"optim.lr": 1}``.

    An empty nested table stays one key (its value ``{}``).
    """
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, name + "."))
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


def sweep_status(stored: str, kind: str, counts: dict[str, int]) -> str:
    """A sweep's status as shown: what was last asked of it (``stored``), except for a grid or
    random sweep still ``running`` whose trials are none of them queued or running: ``done``
    when each ended for good (completed, pruned or failed), ``stopped`` when some were stopped
    or interrupted (``workbench resume SWEEP`` continues them). An Optuna study's controller
    records ``done`` itself; a grid or random sweep has no controller to do it.

    Args:
        stored: The sweep's row's status (``running``, ``stopped``, ``done`` or ``failed``).
        kind: ``grid``, ``random`` or ``optuna``.
        counts: ``{status: count}`` of its trials.
    """
    live = counts.get("queued", 0) + counts.get("running", 0)
    if stored != "running" or kind == "optuna" or not sum(counts.values()) or live:
        return stored
    return "stopped" if counts.get("stopped", 0) + counts.get("interrupted", 0) else "done"
