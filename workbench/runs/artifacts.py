"""Recording a run's files (artifacts and checkpoints) in the index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.checkpoint_names import FOLDER, TEMP_SUFFIX, checkpoint_folder
from workbench.store import RunIndex

__all__ = ["artifact_kind", "record_artifacts", "scan_artifacts"]

_KINDS = {
    ".pt": "weights", ".pth": "weights", ".safetensors": "weights", ".ckpt": "checkpoint",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".svg": "image", ".gif": "image",
    ".json": "data", ".csv": "data", ".jsonl": "data", ".npy": "data", ".npz": "data",
    ".txt": "text", ".md": "text", ".log": "text", ".html": "report", ".pdf": "report",
}


def artifact_kind(path: str) -> str:
    """A kind for the run's file list: weights, checkpoint, image, data, text, report or file."""
    if path.startswith(FOLDER + "/"):
        return "checkpoint"
    return _KINDS.get(os.path.splitext(path)[1].lower(), "file")


def scan_artifacts(run_dir: Path) -> list[dict[str, Any]]:
    """The files under ``artifacts/`` and ``checkpoints/`` (paths relative to the run folder's
    ``artifacts/``; checkpoints as ``checkpoints/<name>``)."""
    rows = []
    for folder, prefix in ((run_dir / "artifacts", ""), (checkpoint_folder(run_dir), FOLDER + "/")):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.endswith(TEMP_SUFFIX):
                continue
            rel = prefix + path.relative_to(folder).as_posix()
            stat = path.stat()
            rows.append({"path": rel, "size": stat.st_size, "kind": artifact_kind(rel),
                         "created_at": stat.st_mtime})
    return rows


def record_artifacts(index: RunIndex, run_id: str, run_dir: Path) -> int:
    """Record the run's files in the index (an upsert by path); return how many there are."""
    rows = scan_artifacts(run_dir)
    if rows:
        index.add_artifacts(run_id, rows)
    return len(rows)
