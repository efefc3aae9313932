"""Root of the test tree: puts ``tests/`` on ``sys.path`` so that every folder's tests, and
the helper modules beside them, import the shared helpers as ``support`` (see
``tests/support/__init__.py``), whichever folder or file pytest was asked to run; and the
session's one device probe (``probe_cache``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


@pytest.fixture(scope="session")
def probe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``devices.json`` from one real run of the device probe, shared by every project of the
    session (each folder's ``make_project`` copies it into its projects)."""
    from workbench.runs.probe import probe_devices

    state = tmp_path_factory.getbasetemp() / "device-probe"
    cache = state / "devices.json"
    if not cache.is_file():
        state.mkdir(parents=True, exist_ok=True)
        probe_devices(state)
    return cache
