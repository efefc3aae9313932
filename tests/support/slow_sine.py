"""The quickstart's SineRegression held to a pace: a test whose run must still be training
when it acts (stops, signals, crashes, prunes) gets seconds for it however fast the machine
is, and a pace that hardly depends on the machine's load.

A bare SineRegression of a few hundred steps ends in a second or two on a fast machine,
before a stop delivered by a supervisor that looks once a second reaches it (seen: a sweep's
stopped trial ended ``completed``, an Optuna study pruned nothing, a Slurm run completed
before its stop).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["SLOW_SINE", "commit_slow_sine"]

#: ``tasks/slow_sine.py``: ``SlowSine``, SineRegression that sleeps ``pause`` seconds (0.15
#: unless told: ``-s pause=0.02``) in every training step.
SLOW_SINE = '''"""SineRegression, at ``pause`` seconds a training step or slower."""
import time
from dataclasses import dataclass

from tasks.sine import SineRegression


class SlowSine(SineRegression):
    """SineRegression that sleeps ``pause`` seconds in every training step."""

    @dataclass
    class Config(SineRegression.Config):
        pause: float = 0.15

    def training_step(self, batch, batch_idx):
        time.sleep(self.config.pause)
        return super().training_step(batch, batch_idx)
'''


def commit_slow_sine(project: Path, env: dict[str, str] | None = None) -> None:
    """Write :data:`SLOW_SINE` into the project as ``tasks/slow_sine.py`` and commit what the
    project holds (so that runs' snapshots are of a clean tree)."""
    (project / "tasks" / "slow_sine.py").write_text(SLOW_SINE)
    for args in (["add", "-A"], ["commit", "-q", "-m", "a slow task"]):
        subprocess.run(["git", *args], cwd=project, env=env, check=True, capture_output=True)
