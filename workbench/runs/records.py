"""The stable JSON shape of a run (``--json`` output; documented in docs/cli.md)."""

from __future__ import annotations

import datetime
import time
from typing import Any

__all__ = ["duration", "flatten_config", "iso", "run_record"]


def iso(ts: float | None) -> str | None:
    """A unix time as ISO 8601 in UTC (``2026-11-22T03:05:05Z``), or None."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(row: dict[str, Any]) -> float | None:
    """Seconds the run has been running (until now, if it still is)."""
    start = row.get("started_at")
    if start is None:
        return None
    end = row.get("ended_at") or (time.time() if row.get("status") == "running" else None)
    return None if end is None else max(0.0, end - start)


def run_record(row: dict[str, Any], metrics: dict[str, float] | None = None,
               artifacts: int | None = None) -> dict[str, Any]:
    """A run as the CLI's ``--json`` prints it."""
    record = {
        "id": row["id"],
        "name": row.get("name"),
        "task": row.get("task"),
        "status": row.get("status"),
        "device": row.get("device"),
        "backend": row.get("backend"),
        "nproc": row.get("nproc"),
        "precision": row.get("precision"),
        "config": row.get("config") or {},
        "tags": row.get("tags") or [],
        "profile": row.get("profile"),
        "created_at": iso(row.get("created_at")),
        "started_at": iso(row.get("started_at")),
        "ended_at": iso(row.get("ended_at")),
        "duration_s": duration(row),
        "attempt": row.get("attempt"),
        "run_dir": row.get("run_dir"),
        "exit_code": row.get("exit_code"),
        "signal": row.get("signal"),
        "error": row.get("error"),
        "progress": {"step": row.get("step"), "total": row.get("total_steps"), "epoch": row.get("epoch")},
        "git": {"head": row.get("git_head"), "branch": row.get("git_branch"),
                "dirty": row.get("git_dirty"), "snapshot": row.get("snapshot_commit")},
        "parent": row.get("parent_id"),
        "metrics": metrics or {},
    }
    if artifacts is not None:
        record["artifacts"] = artifacts
    return record


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: ``{"optim": {"lr": 0.1}}`` → ``{"optim.lr": 0.1}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
