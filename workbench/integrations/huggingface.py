"""A Hugging Face ``TrainerCallback`` that reports to a workbench run.

```python
from transformers import Trainer, TrainingArguments
from workbench.integrations.huggingface import WorkbenchCallback, output_dir

callback = WorkbenchCallback()
args = TrainingArguments(output_dir=output_dir(), report_to=[])   # checkpoints in the run's artifacts/
trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[callback])
trainer.train(resume_from_checkpoint=callback.last_checkpoint)       # None on a first start
```

The run comes from :func:`workbench.init`, as for the Lightning logger: launched by the
workbench, the callback reports to that run; started by hand, a run is created. At
``on_train_begin`` the training arguments (and the model's config, when it has one) go to
the run's config; every ``on_log`` records the numbers logged at the global step; every
``on_save`` records the checkpoint folder: as artifacts when ``output_dir`` is inside the
run's ``artifacts/`` (:func:`output_dir` gives such a folder), else as a ``checkpoint``
event with its path. The end of the process ends the run (``completed``, or ``failed``
with the traceback). Only the main process (``state.is_world_process_zero``) reports.

This module imports ``transformers``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from workbench.attach import AttachedRun
from workbench.integrations._common import RunHandle, artifacts_folder

__all__ = ["WorkbenchCallback", "output_dir"]

_LEFT_OUT = {"logging_dir", "output_dir", "hub_token", "push_to_hub_token"}  # paths of this machine; secrets

_default: RunHandle | None = None


def _handle() -> RunHandle:
    global _default
    if _default is None:
        _default = RunHandle()
    return _default


def output_dir(*parts: str) -> str:
    """A folder in the run's ``artifacts/`` (``artifacts/hf`` by default) for
    ``TrainingArguments(output_dir=...)``: its checkpoints are then the run's artifacts.

    Creates (or attaches to) the run, like :func:`workbench.init`.
    """
    return artifacts_folder(_handle(), *(parts or ("hf",)))


class WorkbenchCallback(TrainerCallback):  # type: ignore[misc]
    """Report a Hugging Face ``Trainer`` to a workbench run.

    Args:
        config: Settings recorded with the run besides the training arguments.
        name: The run's name when it is created here (default: a friendly one).
        tags: Its tags.
        project: The project folder (default: found from the working folder).
    """

    def __init__(self, config: Any = None, *, name: str | None = None, tags: Iterable[str] = (),
                 project: str | Path | None = None) -> None:
        self._handle = RunHandle(config, name, tags, project)

    @property
    def run(self) -> AttachedRun:
        """The workbench run (created or attached to on first use)."""
        return self._handle.run

    @property
    def last_checkpoint(self) -> str | None:
        """The newest checkpoint folder recorded for this run, for
        ``trainer.train(resume_from_checkpoint=...)``; None when there is none yet."""
        path = self._handle.last_checkpoint
        if path is None:
            found = self._handle.newest_checkpoint(".safetensors") or self._handle.newest_checkpoint(".bin")
            path = found.parent if found is not None else None
        return str(path) if path is not None and path.exists() else None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Record the training arguments (and the model's config) in the run's config."""
        if not state.is_world_process_zero:
            return
        values = {k: v for k, v in args.to_dict().items() if k not in _LEFT_OUT}
        model_config = getattr(model, "config", None)
        if model_config is not None and hasattr(model_config, "to_dict"):
            values["model"] = {k: v for k, v in model_config.to_dict().items()
                               if isinstance(v, (bool, int, float, str)) or v is None}
        self._handle.record_config(values)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        """Record the numbers logged, at the global step."""
        if state.is_world_process_zero and logs:
            self._handle.log(logs, state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Record the checkpoint folder the trainer just wrote."""
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            self._handle.register([folder], "Hugging Face checkpoint")
            self._handle.last_checkpoint = folder.resolve()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Record that training ended, at which step. The run itself ends with the process
        (``completed``, or ``failed`` with the traceback), so an evaluation after
        ``train()`` still reports to it."""
        if state.is_world_process_zero and self._handle.started:
            self._handle.event("trained", f"Hugging Face Trainer done at step {state.global_step}")
