"""The supervisor's verdict on a training process that a stop reached while Python was still
looking for its module (``python -m``): it exits 1 with a ``KeyboardInterrupt`` traceback,
not by the signal. Seen in CI: such a run ended ``failed``. A real index, a real log file."""

from __future__ import annotations

from pathlib import Path

from workbench.runs.spec import RunSpec
from workbench.runs.supervisor import _conclude
from workbench.store import RunIndex, RunStatus, StopMode

TRACEBACK = ('=== attempt 1\nTraceback (most recent call last):\n'
             '  File "<frozen importlib._bootstrap_external>", line 1659, in _fill_cache\nKeyboardInterrupt\n')


def _conclude_with(tmp_path: Path, log: str, *, stop: bool) -> RunStatus:
    index = RunIndex(tmp_path / "index.db")
    run = index.create_run(task="T", status="queued")
    if stop:
        index.request_stop(run.id, StopMode.GRACEFUL, "user")
    spec = RunSpec(id=run.id, task="T", task_file="t.py", task_module="t", config={}, device="cpu",
                   backend="single", nproc=1, precision="32", project_root=str(tmp_path),
                   index=str(tmp_path / "index.db"), code_dir=str(tmp_path))
    (tmp_path / "output.log").write_text(log)
    _conclude(index, spec, 1, stop, tmp_path / "output.log", 1)
    status = index.get_run(run.id).status
    index.close()
    return status


def test_a_stop_that_interrupted_the_start_ends_stopped(tmp_path: Path) -> None:
    assert _conclude_with(tmp_path, TRACEBACK, stop=True) is RunStatus.STOPPED


def test_the_same_exit_without_a_stop_is_a_failure(tmp_path: Path) -> None:
    assert _conclude_with(tmp_path, TRACEBACK, stop=False) is RunStatus.FAILED
    other = tmp_path / "b"
    other.mkdir()
    assert _conclude_with(other, "=== attempt 1\nValueError: boom\n", stop=True) is RunStatus.FAILED
