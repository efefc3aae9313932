"""Checkpoints: everything needed to continue a run as if nothing had happened.

A checkpoint holds the model, optimiser, scheduler and grad scaler, every RNG state, the
epoch and batch position, the extensions' state and the metric step. It is written to a
temporary file in the same folder, fsync'd, then renamed, so a reader never sees half a
file; the previous checkpoints stay until the new one is complete. Only tensors and plain
containers go in, so loading works with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from workbench.checkpoint_names import (
    TEMP_SUFFIX,
    best_file,
    checkpoint_folder,
    is_partial,
    step_file,
    step_files,
    temp_prefix,
)
from workbench.core.attributes import describe_uncovered
from workbench.core.state import CHECKPOINT_FORMAT

__all__ = ["Checkpoint", "list_checkpoints", "load_checkpoint", "load_latest"]

EventCallback = Callable[[str, str, dict], None]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every platform opens folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def _flush_points(task: Any) -> None:
    """Make the points logged so far durable before a checkpoint that covers them appears.

    A crash between the two would otherwise leave a checkpoint at step N while the points
    up to N were still in the writer's memory: the resumed attempt starts after them and
    the curve keeps a gap forever. (The index's WAL with ``synchronous=NORMAL`` survives a
    killed process; only a power loss can still take the last commits.)
    """
    sink = getattr(task, "sink", None)
    if sink is not None:
        sink.flush()


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the step checkpoints in ``folder``, newest first."""
    return step_files(folder)


def remove_partial(folder: Path) -> list[Path]:
    """Delete the temporary files of saves that never completed (the process died while
    writing); return them. Only one attempt of a run writes to its folder at a time."""
    removed = []
    if folder.is_dir():
        for path in folder.iterdir():
            if is_partial(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint safely (``weights_only=True``, onto the CPU).

    Raises:
        ValueError: The file is unreadable, truncated, or not a workbench checkpoint.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable
        raise ValueError(f"{path.name} cannot be loaded ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path.name} is not a workbench checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def load_latest(folder: Path, on_event: EventCallback | None = None,
                before_step: int | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in ``folder`` that loads; a broken one is skipped with an event.

    Args:
        folder: The run's ``checkpoints/`` folder.
        on_event: Told about each skipped checkpoint (``checkpoint-skipped``).
        before_step: Only consider checkpoints at or before this step.

    Returns:
        ``(path, state)``, or None when no checkpoint loads.
    """
    for step, path in list_checkpoints(folder):
        if before_step is not None and step > before_step:
            continue
        try:
            return path, load_checkpoint(path)
        except ValueError as exc:
            if on_event is not None:
                on_event("checkpoint-skipped", f"{exc}; falling back to the previous checkpoint",
                         {"path": str(path)})
    return None


class Checkpoint:
    """Saves checkpoints on a schedule, on a graceful stop, and at the end of ``fit``.

    Files go to ``folder`` as ``step-<step>.pt``; the newest ``keep`` are kept, plus
    ``best.pt`` when ``best`` names a validation metric (the names are
    :mod:`workbench.checkpoint_names`'s).

    Args:
        folder: Where checkpoints go (default: the run folder's ``checkpoints/``).
        every_epochs: Save at each epoch boundary whose number is a multiple of this (0: never).
        every_steps: Also save every this many steps (None: never).
        every_minutes: Also save when this many minutes passed since the last save.
        keep: How many step checkpoints to keep.
        best: A validation metric (``loss`` or ``val/loss``) whose best value keeps ``best.pt``.
        mode: ``min`` or ``max`` for ``best``.
        on_event: Called with ``(kind, message, data)`` for each save or skipped file.
    """

    def __init__(self, folder: str | Path | None = None, *, every_epochs: int = 1, every_steps: int | None = None,
                 every_minutes: float | None = None, keep: int = 2, best: str | None = None,
                 mode: str = "min", on_event: EventCallback | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.every_epochs = every_epochs
        self.every_steps = every_steps
        self.every_minutes = every_minutes
        self.keep = max(1, keep)
        self.best = best.removeprefix("val/") if best else None
        self.mode = mode
        self.on_event = on_event
        self.best_value: float | None = None
        self.saved: list[Path] = []
        self._start_epoch = 0
        self._last_save = time.monotonic()
        self._last_step = -1

    def _event(self, kind: str, message: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, message, data)

    def _check_complete(self, task: Any, payload: dict[str, Any]) -> None:
        """Say once (event ``checkpoint-incomplete`` and a warning line) which attributes of
        the task changed since setup and are in no checkpointed state: a resume would
        start them from their values at setup and diverge."""
        audit = getattr(task, "_audit", None)
        if audit is None:
            return
        names = audit.check(task, payload.get("task"))
        if names:
            message = describe_uncovered(names)
            print(f"warning: {message}", file=sys.stderr, flush=True)
            self._event("checkpoint-incomplete", message, {"attributes": names})

    def before_fit(self, state: Any, task: Any) -> None:
        """Remember where this session started (no checkpoint for the epoch it resumes)."""
        if self.folder is None:
            if task.run_dir is None:
                from workbench.errors import WorkbenchError

                raise WorkbenchError("Checkpoint() without a folder needs a task with a run folder (run_dir)")
            self.folder = checkpoint_folder(task.run_dir)
        own = task.run_dir is not None and self.folder == checkpoint_folder(task.run_dir)
        if own and task.backend.is_main:  # a run's folder has one writer: a temp file is a crash's
            for path in remove_partial(self.folder):
                self._event("checkpoint-removed", f"removed {path.name}, left by a save that never "
                            "completed", {"path": str(path)})
        self._start_epoch = state.epoch
        self._last_save = time.monotonic()
        self._last_step = state.step if state.batch_in_epoch == 0 else -1

    def before_epoch(self, task: Any, state: Any) -> None:
        """Save at the epoch boundary (the previous epoch and its validation are done)."""
        if (self.every_epochs and state.epoch > self._start_epoch
                and state.epoch % self.every_epochs == 0):
            self.save(task, "epoch")

    def after_batch(self, task: Any, state: Any, backend: Any) -> None:
        """Save every ``every_steps`` steps or ``every_minutes`` minutes."""
        due = bool(self.every_steps) and state.step % self.every_steps == 0
        if not due and self.every_minutes is not None:
            due = time.monotonic() - self._last_save >= self.every_minutes * 60
            if backend.world_size > 1:  # clocks differ: every process must agree to save
                due = backend.agree(due)
        if due:
            self.save(task, "step")

    def after_validate(self, task: Any, metrics: dict[str, float], backend: Any) -> None:
        """Keep ``best.pt`` when the watched metric improved."""
        if self.best is None or self.best not in metrics or self.folder is None:
            return
        value = metrics[self.best]
        better = self.best_value is None or (value < self.best_value if self.mode == "min"
                                             else value > self.best_value)
        if better:
            self.best_value = value
            state = task.checkpoint_state()
            if backend.is_main:
                self._check_complete(task, state)
                _flush_points(task)
                path = save_atomic(state, best_file(self.folder))
                self._event("checkpoint", f"best val/{self.best} {value:.6g} at step {task.state.step}",
                            {"path": str(path), "reason": "best"})

    def after_fit(self, task: Any, state: Any) -> None:
        """Save at the end, and on a graceful stop (the position is mid-epoch then)."""
        self.save(task, "stop" if state.stopped_early else "end")

    def save(self, task: Any, reason: str) -> Path | None:
        """Write a checkpoint of ``task`` now (rank 0 writes; every rank must call this)."""
        state = task.state
        if state.step == self._last_step and reason != "stop":
            return None  # this exact position is saved already
        payload = task.checkpoint_state()
        self._last_step = state.step
        self._last_save = time.monotonic()
        if not task.backend.is_main:
            return None
        self._check_complete(task, payload)
        _flush_points(task)
        path = save_atomic(payload, self.folder / step_file(state.step))
        self.saved.append(path)
        for _, old in list_checkpoints(self.folder)[self.keep:]:
            old.unlink(missing_ok=True)
        self._event("checkpoint", f"saved at step {state.step} (epoch {state.epoch + 1}, "
                    f"batch {state.batch_in_epoch}; {reason})",
                    {"path": str(path), "step": state.step, "reason": reason})
        return path

    def state_dict(self) -> dict[str, Any]:
        """The best value seen so far."""
        return {"best_value": self.best_value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value."""
        self.best_value = state.get("best_value")
