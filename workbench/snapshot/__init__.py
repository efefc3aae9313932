"""Git snapshots of a project's code, one per run.

At launch the working tree is recorded as a commit under
``refs/workbench/runs/<run-id>`` through a temporary index, without touching HEAD,
the branch, the index, the stash or the files; the run imports its code from a copy
of that commit. See docs/snapshots.md.

Repository access goes through GitPython (``workbench.snapshot._access``), imported
on first use: importing this package loads neither torch, textual nor GitPython.
"""

from __future__ import annotations

from workbench.snapshot._guards import HEAVY_DIRS, HEAVY_SUFFIXES
from workbench.snapshot.api import add_ref, delete_ref, diff, gc, list_refs, take_snapshot
from workbench.snapshot.files import checkout, diff_commits, materialise
from workbench.snapshot.model import REF_PREFIX, Snapshot, SnapshotError
from workbench.snapshot.repo import DEFAULT_MAX_FILE_BYTES, SnapshotRepo, check_run_id

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "HEAVY_DIRS",
    "HEAVY_SUFFIXES",
    "REF_PREFIX",
    "Snapshot",
    "SnapshotError",
    "SnapshotRepo",
    "add_ref",
    "check_run_id",
    "checkout",
    "delete_ref",
    "diff",
    "diff_commits",
    "gc",
    "list_refs",
    "materialise",
    "take_snapshot",
]
