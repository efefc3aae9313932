"""The chaos test's task (copied into its project as ``tasks/chaos.py``).

``SineRegression`` with a checkpoint every few steps (none at epoch ends), training steps
that sleep a little (a run lasts long enough to be killed at a chosen moment while using
almost no CPU), and a slow validation that leaves a marker file, ``validating``, in the run
folder while it runs: the chaos driver kills a run during its validation by watching for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sine import SineRegression

from workbench.extensions import Checkpoint

#: The file in the run folder that exists while a validation step runs.
VALIDATING = "validating"


class Chaos(SineRegression):
    """SineRegression that checkpoints every few steps and validates slowly."""

    @dataclass
    class Config(SineRegression.Config):
        every: int = 5  # a checkpoint every this many steps
        step_sleep: float = 0.03  # seconds each training step sleeps
        val_sleep: float = 0.25  # seconds each validation step sleeps

    def extensions(self) -> list[object]:
        return [Checkpoint(every_steps=self.config.every, every_epochs=0)]

    def training_step(self, batch, batch_idx):
        time.sleep(self.config.step_sleep)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        marker = Path(self.run_dir) / VALIDATING
        marker.write_text(f"{self.state.step}\n")
        time.sleep(self.config.val_sleep)
        result = super().validation_step(batch, batch_idx)
        marker.unlink(missing_ok=True)
        return result
