"""Helpers for the CLI tests: the shared ones of :mod:`support.projects`.

``copy_quickstart(dest, probe_cache)`` copies the quickstart project to ``dest/quickstart``
(no git repository: snapshots go to workbench's private repository) with the session's
device probe answer cached in it (the probe itself imports torch: once per session is enough).
"""

from __future__ import annotations

from support.projects import REPO, copy_quickstart

__all__ = ["REPO", "copy_quickstart"]
