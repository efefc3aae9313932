"""A DDP rank killed by a signal is named, with its signal, as the run's error: not the
"connection reset" the surviving ranks fail with."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest
from runs_helpers import SLOW_TASK, launch, wait_ended, wait_training

from workbench.runs.supervisor import killed_rank

pytestmark = pytest.mark.slow

PROJECT_FILES = {"tasks/slow.py": SLOW_TASK}

REPORT = """
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
workbench.runs.train FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-01_14:00:01
  host      : box
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 4100)
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-01_14:00:00
  host      : box
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4101)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4101
============================================================
"""


def test_the_report_names_the_killed_rank() -> None:
    assert killed_rank(REPORT) == (1, 9, 4101)
    assert killed_rank(REPORT.replace("exitcode  : -9", "exitcode  : 1")) is None
    assert killed_rank("RuntimeError: connection reset by peer") is None


def test_a_killed_rank_is_named_in_the_run(module_project: Path) -> None:
    run_id = launch(module_project, "Slow", "-s", "epochs=1000", "-s", "samples=2000", "--backend", "ddp",
                    "--nproc", "2", "--name", "ddpkill")["id"]
    row = wait_training(module_project, run_id, min_step=2)
    rank0 = psutil.Process(row.pid)
    ranks = [p for p in rank0.parent().children() if p.pid != rank0.pid]
    assert len(ranks) == 1, ranks
    ranks[0].send_signal(signal.SIGKILL)

    ended = wait_ended(module_project, [run_id])[run_id]

    assert ended.status == "interrupted", (ended.status, ended.error)
    assert "rank 1" in ended.error and "SIGKILL" in ended.error, ended.error
    assert ended.signal == signal.SIGKILL
