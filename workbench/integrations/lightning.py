"""A Lightning logger that reports to a workbench run: ``Trainer(logger=WorkbenchLogger())``.

```python
from lightning.pytorch import Trainer            # or: from pytorch_lightning import Trainer
from workbench.integrations.lightning import WorkbenchLogger

logger = WorkbenchLogger()
trainer = Trainer(max_epochs=10, logger=logger)
trainer.fit(model, datamodule, ckpt_path=logger.last_checkpoint)   # None on a first start
```

The run comes from :func:`workbench.init`: launched by the workbench, the logger reports to
that run; started by hand, a run is created (project found, code snapshot, command line).
Hyperparameters (``save_hyperparameters()``) go to the run's config, every logged metric
to its curves at the trainer's global step, and each checkpoint that ``ModelCheckpoint``
saves is recorded as an artifact of the run: unless ``ModelCheckpoint(dirpath=...)`` says
otherwise, they are written under the run's ``artifacts/lightning/checkpoints/``. A fit
that raises ends the run ``failed`` (``interrupted`` on Ctrl-C); a normal exit of the
process ends it ``completed``. Only the main process (global rank 0) reports.

This module imports Lightning: ``lightning.pytorch`` when installed, else ``pytorch_lightning``.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # the older package name
    from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment
    from pytorch_lightning.utilities import rank_zero_only

from workbench.attach import AttachedRun
from workbench.integrations._common import RunHandle

__all__ = ["WorkbenchLogger"]


class WorkbenchLogger(Logger):
    """Report a Lightning ``Trainer`` to a workbench run.

    Args:
        config: Settings recorded with the run besides the module's hyperparameters.
        name: The run's name when it is created here (default: a friendly one).
        tags: Its tags.
        project: The project folder (default: found from the working folder).
    """

    def __init__(self, config: Any = None, *, name: str | None = None, tags: Iterable[str] = (),
                 project: str | Path | None = None) -> None:
        super().__init__()
        self._handle = RunHandle(config, name, tags, project)

    # -- what Lightning asks of a logger ----------------------------------------------

    @property
    def name(self) -> str:
        """The folder under :attr:`save_dir` that Lightning's checkpoints go to (``lightning``)."""
        return "lightning"

    @property
    def version(self) -> str:
        """Empty: one run is one version (the progress bar shows no ``v_num``)."""
        return ""

    @property
    def save_dir(self) -> str | None:
        """The run's ``artifacts/`` folder (only the main process has one)."""
        if rank_zero_only.rank != 0:
            return None
        return str(self.run.artifacts)

    @property
    @rank_zero_experiment
    def experiment(self) -> AttachedRun:
        """The workbench run (``run.log({...})`` works on it directly)."""
        return self.run

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Merge the hyperparameters into the run's config."""
        self._handle.record_config(params)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log the metrics at ``step`` (the trainer's global step)."""
        self._handle.log(metrics, step)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Record the checkpoint ``ModelCheckpoint`` just saved (and its best/last links)."""
        if rank_zero_only.rank != 0:
            return
        saved = getattr(checkpoint_callback, "_last_checkpoint_saved", "") or ""
        paths = [p for p in dict.fromkeys([saved, getattr(checkpoint_callback, "last_model_path", "")])
                 if p and Path(p).is_file()]
        if paths:
            self._handle.register(paths, "Lightning checkpoint")
            self._handle.last_checkpoint = Path(saved) if saved and Path(saved).is_file() else Path(paths[-1])

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """``failed`` ends the run now (``interrupted`` on Ctrl-C); ``success`` leaves it to
        the end of the process, which marks it ``completed`` (a later ``trainer.test()``
        still logs to it)."""
        if status == "failed":
            self._handle.fail("Lightning")

    # -- for the user ---------------------------------------------------------------

    @property
    def run(self) -> AttachedRun:
        """The workbench run (created or attached to on first use)."""
        return self._handle.run

    @property
    def last_checkpoint(self) -> str | None:
        """The newest ``.ckpt`` recorded for this run, to pass as ``ckpt_path``: this
        process's last save, else an earlier attempt's (a restarted run); None when there is
        none yet, which Lightning takes as a fresh start."""
        if rank_zero_only.rank != 0:
            return None
        path = self._handle.newest_checkpoint(".ckpt")
        return str(path) if path is not None else None
