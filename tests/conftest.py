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


#: The longest modules (real Slurm jobs, kill-and-resume scenarios) go first: ``make test``
#: hands whole modules to its two workers in collection order (``--dist loadscope``), and a
#: long module handed out last would leave one worker idle while the other finishes it.
_LONG_FIRST = ("tests/slurm/test_slurm_runs.py", "tests/resume/", "tests/chaos/", "tests/runs/test_ddp_kill.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the longest modules first (a stable sort: each module keeps its own order)."""
    items.sort(key=lambda item: not item.nodeid.startswith(_LONG_FIRST))
