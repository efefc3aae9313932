"""Fixtures for the fault-injection tests.

One session-wide :class:`~resume_helpers.Campaign` runs the scenarios (real runs of real
processes in copies of the quickstart project) concurrently: the scenarios that the
collected tests name (``@pytest.mark.scenarios(...)``) all start before the first test
waits on any of them, so the suite costs about as long as its slowest scenario. At
teardown every process the projects' runs left behind is killed, by the pids in their
indexes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from resume_helpers import Campaign, kill_run_processes, make_project
from resume_scenarios import SCENARIOS, Context


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenarios(*names): the fault-injection scenarios a test checks")


@pytest.fixture(scope="session")
def campaign(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             probe_cache: Path) -> Iterator[Campaign]:
    """The scenarios, started together; ``campaign.result(name)`` waits for one."""
    context = Context(project=make_project(tmp_path_factory.mktemp("resume"), probe_cache),
                      crash_project=make_project(tmp_path_factory.mktemp("resume-crash"), probe_cache))
    runs = Campaign(SCENARIOS, context)
    wanted: list[str] = []
    for item in request.session.items:
        for mark in item.iter_markers("scenarios"):
            wanted += [name for name in mark.args if name not in wanted]
    projects = (context.project, context.crash_project)
    try:
        runs.start(wanted)
        yield runs
    finally:
        if runs.unfinished():  # a test gave up: end the runs its scenario waits on
            for project in projects:
                kill_run_processes(project)
        runs.close()
        for project in projects:
            kill_run_processes(project)


@pytest.fixture(autouse=True)
def _scenario_again_on_rerun(request: pytest.FixtureRequest) -> None:
    """A test run a second time (``make test`` reruns a failure once) gets its own scenario
    (the first one its marker names) played again, not the first play's cached result; the
    baselines it compares with are kept."""
    mark = request.node.get_closest_marker("scenarios")
    if mark is not None and getattr(request.node, "execution_count", 1) > 1:
        request.getfixturevalue("campaign").restart(mark.args[0])
