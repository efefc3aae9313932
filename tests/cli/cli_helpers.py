"""Helpers for the CLI tests."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "sample_projects" / "quickstart"


def copy_quickstart(dest: Path, probe_cache: Path) -> Path:
    """Copy the quickstart project to ``dest/quickstart`` with the session's device probe
    answer cached in it (the probe itself imports torch: once per session is enough)."""
    root = dest / "quickstart"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".workbench", "__pycache__"))
    (root / ".workbench").mkdir()
    shutil.copy(probe_cache, root / ".workbench" / "devices.json")
    return root
