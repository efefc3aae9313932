"""System metrics: the supervisor samples the run's processes against time, apart from the
training steps (never set aside, never replayed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from runs_helpers import SLOW_TASK, index_of, launch, wait_ended, wait_training, wb

from workbench.runs.sampler import SystemSampler

pytestmark = pytest.mark.slow

PROJECT_FILES = {"tasks/slow.py": SLOW_TASK}


def test_a_sample_of_this_process_tree() -> None:
    sampler = SystemSampler(os.getpid(), every=60)
    assert sampler.due()
    first = {key: (value, step) for key, value, step, _ in sampler.sample()}
    assert not sampler.due()
    assert {"sys/cpu_percent", "sys/rss_mb", "sys/memory_percent"} <= set(first)
    assert first["sys/rss_mb"][0] > 1 and 0 < first["sys/memory_percent"][0] <= 100
    assert abs(first["sys/rss_mb"][1] / 1000 - time.time()) < 60  # the step is a time in ms
    sampler.close()


def test_a_run_gets_system_metrics_that_a_resume_leaves_alone(module_project: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_SYS_EVERY", "0.5")
    run_id = launch(module_project, "Slow", "-s", "epochs=1000", "-s", "samples=2000", "--name", "sampled")["id"]
    wait_training(module_project, run_id, min_step=30)
    assert wb(module_project, "stop", run_id).returncode == 0
    wait_ended(module_project, [run_id])
    with index_of(module_project) as index:
        before = index.points(run_id, "sys/rss_mb")
    assert len(before) >= 2 and all(value > 1 for _, value, _ in before)

    assert wb(module_project, "resume", run_id).returncode == 0
    wait_training(module_project, run_id, min_step=40)
    assert wb(module_project, "stop", run_id).returncode == 0
    wait_ended(module_project, [run_id])
    with index_of(module_project) as index:
        after = index.points(run_id, "sys/rss_mb")
        aside = index.aside_points(run_id)
        replay = [e for e in index.events(run_id) if e.kind == "replay"]
    assert after[: len(before)] == before and len(after) > len(before)  # kept, and more came
    assert not [p for p in aside if p["key"].startswith("sys/")]
    assert replay and "sys/" not in str(replay[-1].data)
