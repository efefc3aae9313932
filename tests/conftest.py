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


#: The longest modules, longest first (as measured in full runs of ``make test``: the Slurm
#: folder ~450 s on its worker, mostly waiting on Slurm; the resume campaign ~180 s; then
#: ~150 s down to ~30 s). ``make test`` hands whole modules to its two workers
#: (``--dist loadscope``) in this order, the rest after them in collection order: a long
#: module handed out last would leave one worker idle while the other finishes it.
_LONG_FIRST = (
    "tests/slurm/", "tests/resume/", "tests/test_runner.py", "tests/sweeps/test_optuna.py",
    "tests/chaos/test_chaos.py", "tests/runs/test_determinism.py", "tests/runs/test_evaluate.py",
    "tests/journal/test_journal_runs.py", "tests/sweeps/test_sweeps.py", "tests/runs/test_nnodes.py",
    "tests/tui/test_tui_launch.py", "tests/tui/test_tui_main.py", "tests/tui/test_tui_docs.py",
    "tests/test_docs.py", "tests/tui/test_tui_sweep.py", "tests/tui/test_tui_snapshots.py",
    "tests/runs/test_runs_concurrency.py", "tests/core/test_core_ddp_stop.py",
    "tests/integrations/test_lightning.py", "tests/runs/test_crash_consistency.py", "tests/runs/test_verify.py",
    "tests/tui/test_tui_keys.py", "tests/runs/test_gc_rebuild.py", "tests/sweeps/test_sweep_crash.py",
    "tests/queue/test_queue.py", "tests/runs/test_ownership.py", "tests/runs/test_ddp_kill.py",
)


def _rank(nodeid: str) -> int:
    """The position of the item's module in :data:`_LONG_FIRST` (the others: after them all)."""
    return next((i for i, prefix in enumerate(_LONG_FIRST) if nodeid.startswith(prefix)), len(_LONG_FIRST))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the longest modules first (a stable sort: each module keeps its own order)."""
    items.sort(key=lambda item: _rank(item.nodeid))


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

    # pytest-xdist 3.7+ sorts the scopes by their number of tests unless told not to
    # (--no-loadscope-reorder): the one-test modules that train most (chaos, the runs at
    # once, the Optuna study) then came last, and this file's order was lost.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    return FolderScopes(config, log)
