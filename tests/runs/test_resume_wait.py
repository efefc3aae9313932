"""A resume asked for while the previous attempt's supervisor is still writing its last words
(the row already says ``stopped``) waits for it, and says so, instead of refusing. Seen in
CI: a DDP run's torchrun took over 15 s to tear down its ranks under load, and ``workbench
resume`` right after the stop exited 2. A real index, a real process as the supervisor."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from support.projects import copy_quickstart

from workbench.errors import WorkbenchError
from workbench.project import load_project
from workbench.runs import resume as resume_module
from workbench.runs.liveness import process_create_time
from workbench.store import RunIndex, RunStatus


def _stopped_run_owned_by(tmp_path: Path, proc: subprocess.Popen[bytes]) -> tuple[RunIndex, str]:
    index = RunIndex(tmp_path / "index.db")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run = index.create_run(task="T", status="queued", run_dir=str(run_dir))
    index.update_run(run.id, status=RunStatus.STOPPED, supervisor_pid=proc.pid,
                     supervisor_create_time=process_create_time(proc.pid))
    return index, run.id


def test_resume_waits_for_the_supervisor_then_goes_on(tmp_path: Path) -> None:
    project = load_project(copy_quickstart(tmp_path))
    supervisor = subprocess.Popen(["sleep", "60"])
    index, run_id = _stopped_run_owned_by(tmp_path, supervisor)
    told: list[str] = []
    threading.Timer(2.0, supervisor.kill).start()
    try:
        # past the wait, the next check: this run folder has no spec
        with pytest.raises(WorkbenchError) as refused:
            resume_module.resume_run(project, index, index.get_run(run_id), start=False, waiting=told.append)
    finally:
        supervisor.kill()
        supervisor.wait()
        index.close()
    assert "shutting down" not in str(refused.value)
    assert len(told) == 1 and "waiting for run" in told[0] and run_id in told[0]


def test_a_supervisor_that_never_exits_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = load_project(copy_quickstart(tmp_path))
    monkeypatch.setattr(resume_module, "SHUTDOWN_WAIT_S", 1.5)
    supervisor = subprocess.Popen(["sleep", "60"])
    index, run_id = _stopped_run_owned_by(tmp_path, supervisor)
    try:
        with pytest.raises(WorkbenchError, match=f"still shutting down after 1.5 s \\(supervisor pid {supervisor.pid}\\)"):
            resume_module.resume_run(project, index, index.get_run(run_id), start=False)
        assert index.get_run(run_id).status is RunStatus.STOPPED  # untouched
    finally:
        supervisor.kill()
        supervisor.wait()
        index.close()
