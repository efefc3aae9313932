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
_LONG_FIRST = ("tests/slurm/", "tests/resume/", "tests/chaos/", "tests/runs/test_ddp_kill.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the longest modules first (a stable sort: each module keeps its own order)."""
    items.sort(key=lambda item: not item.nodeid.startswith(_LONG_FIRST))


#: Folders whose modules share one session-wide resource and so run on one worker, as one
#: unit of ``--dist loadscope``: ``tests/resume`` (its campaign of kill-and-resume scenarios
#: is a session fixture that every worker would otherwise run whole, since a worker collects
#: every test) and ``tests/slurm`` (one Slurm: a worker's session fixture stops the daemons
#: it started while the other worker may still use them; a preemption or an exclusive job of
#: one test would hit the jobs of another running beside it).
ONE_WORKER = ("tests/resume/", "tests/slurm/")


@pytest.hookimpl(optionalhook=True)  # a known hook only where pytest-xdist is installed
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadscope`` with each folder of :data:`ONE_WORKER` as one scope."""
    if config.getoption("dist", None) != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FolderScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((folder for folder in ONE_WORKER if nodeid.startswith(folder)), None) \
                or super()._split_scope(nodeid)

    return FolderScopes(config, log)
