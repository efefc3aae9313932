"""The loop that runs a task: session › fit › epoch › batch, and validate/test › batch.

:class:`~workbench.core.task.Task` holds the steps a user overrides (``training_step``,
``backward``, ``optimizer_step`` …); this module calls them in order, opens and closes the
stages whose hooks extensions attach to, and advances the task's
:class:`~workbench.core.state.TrainState` — as Ignite's ``Engine`` runs the function it is
given. ``Task.fit()``, ``Task.evaluate()`` and ``Task.test()`` are the public doors.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import torch

from workbench.core.data import EpochSampler
from workbench.core.errors import TaskError

if TYPE_CHECKING:
    from workbench.core.task import Task

__all__ = ["evaluate", "fit", "session"]


@contextlib.contextmanager
def session(task: Task) -> Iterator[None]:
    """Set ``task`` up and hold the session stage (setup before, teardown after) around a run."""
    task.setup()
    hooks = task.hooks
    hooks.enter(
        "session", task=task, config=task.config, state=task.state, device=task.device,
        backend=task.backend, precision=task.precision, model=task.model,
        optimizer=task.optimizer, scheduler=task.scheduler, criterion=task.criterion,
        data=task.loaders, log=task.log,
    )
    try:
        hooks.enter("setup")
        hooks.exit("setup")
        yield
    finally:
        try:
            hooks.enter("teardown")
            hooks.exit("teardown")
        finally:
            hooks.drop("session")


def fit(task: Task) -> None:
    """Train ``task`` for ``max_epochs`` epochs from where its state stands, validating each.

    Runs inside :func:`session`.
    """
    state, hooks, backend = task.state, task.hooks, task.backend
    if task.loaders.train is None:
        raise TaskError(f"{type(task).__name__}.build_data() gave no training data")
    train = backend.prepare_loader(task.loaders.train, shuffle=True, seed=task.seed)
    val = backend.prepare_loader(task.loaders.val, shuffle=False, seed=task.seed)
    per_epoch = len(train) if hasattr(train, "__len__") else None
    accumulate = task.accumulate_grad_batches  # read once per fit: asked for every batch
    state.max_epochs = task.max_epochs
    state.total_steps = per_epoch * state.max_epochs if per_epoch is not None else None
    hooks.enter("fit", train_loader=train, val_loader=val, max_epochs=state.max_epochs,
                total_steps=state.total_steps)
    try:
        stop = _agreed_stop(task)
        while state.epoch < state.max_epochs and not stop:
            if _epoch(task, train, accumulate):
                stop = True
                break
            metrics = evaluate(task, "validate", val) if val is not None else {}
            _step_scheduler_per_epoch(task, metrics)
            state.epoch += 1
            state.batch_in_epoch = 0
            stop = _agreed_stop(task)
    except BaseException:
        hooks.drop("fit")
        raise
    state.stopped_early = stop
    hooks.exit("fit")


def _agreed_stop(task: Task) -> bool:
    """Whether to stop, the same on every process.

    A stop request can arrive (a signal handler sets the flag) at any moment on any one
    process: every decision of the loop is taken on a value all processes agreed on, never
    on the flag as one of them reads it (one rank leaving a loop the others stay in would
    leave them waiting in their next collective forever). An agreed stop sets the flag on
    every process; a request after the agreement is carried into the next one.
    """
    if task.backend.world_size == 1:
        return task.state.stop_requested
    if task.backend.agree(task.state.stop_requested):
        task.state.stop_requested = True
        return True
    return False


def _epoch(task: Task, train: Any, accumulate: int) -> bool:
    """Train one epoch (from ``state.batch_in_epoch``); True when the processes agreed to
    stop during it."""
    state, hooks = task.state, task.hooks
    task.backend.set_epoch(train, state.epoch)
    batches = _epoch_iterator(task, train)
    start = state.batch_in_epoch
    length = len(train) if hasattr(train, "__len__") else None
    hooks.enter("epoch", epoch=state.epoch)
    values = hooks.values
    try:
        task.model.train()
        call_before = hooks.has("before_batch")
        call_after = hooks.has("after_batch")
        stop = False
        for batch_idx, batch in enumerate(batches, start):
            batch = task.prepare_batch(batch)
            # Hooks.enter/exit inlined: this is the hot loop. The stage tree is
            # static, so no enclosing stage can own these names.
            values["batch"] = batch
            values["batch_idx"] = batch_idx
            state.batch_step = state.step + 1  # what log() records during the batch lands at its step
            if call_before:
                hooks.call("before_batch")
            loss, outputs = _train_batch(task, batch, batch_idx, accumulate)
            state.step += 1
            state.batch_in_epoch = batch_idx + 1
            if call_after:
                values["loss"] = loss
                values["outputs"] = outputs
                hooks.call("after_batch")
                del values["loss"], values["outputs"]
            state.batch_step = None
            del values["batch"], values["batch_idx"]
            stop = _agreed_stop(task)  # every process stops after the same batch
            if stop and batch_idx + 1 != length:
                break
        else:
            # A complete epoch ends with its after_ hooks; one cut short by a stop
            # request just ends (its mean would be of part of an epoch).
            hooks.exit("epoch")
            return stop
    except BaseException:
        state.batch_step = None
        for name in ("batch", "batch_idx", "loss", "outputs"):
            values.pop(name, None)
        hooks.drop("epoch")
        raise
    hooks.drop("epoch")
    return True


def _epoch_iterator(task: Task, train: Any) -> Iterator[Any]:
    """The epoch's batches, from ``state.batch_in_epoch`` on.

    Creating a loader's iterator draws from torch's global RNG (DataLoader's base seed;
    RandomSampler's shuffle). The RNG state at the epoch's start is kept in the state,
    so that a mid-epoch resume recreates the very same iterator, seeks (or reads and
    drops) the batches already done, and then continues from the checkpoint's RNG.
    """
    state = task.state
    start = state.batch_in_epoch
    epoch_rng = state.extra.get("epoch_rng")
    # A checkpoint saved at an epoch's start (by a ``before_epoch`` hook) was taken after
    # this very call had created the epoch's iterator, and its RNG state is past the
    # draws that made: a resume from it re-creates the iterator from the epoch's
    # starting RNG, as a mid-epoch resume does. (A checkpoint taken before the epoch's
    # iterator existed, e.g. on a stop during the previous validation, carries the
    # previous epoch's number here, and starts the epoch afresh.)
    at_saved_start = epoch_rng is not None and state.extra.get("epoch_rng_epoch") == state.epoch
    if not start and not at_saved_start:
        state.extra["epoch_rng"] = torch.get_rng_state()
        state.extra["epoch_rng_epoch"] = state.epoch
        return iter(train)
    resume_rng = torch.get_rng_state()
    if epoch_rng is not None:
        torch.set_rng_state(epoch_rng)
    sampler = getattr(train, "sampler", None)
    if isinstance(sampler, EpochSampler) and getattr(train, "batch_size", None):
        sampler.set_start(start * train.batch_size)  # seek: skipped batches are not read
        iterator = iter(train)
    else:  # no way to seek: read and drop the batches already done
        iterator = iter(train)
        for _ in range(start):
            next(iterator)
    torch.set_rng_state(resume_rng)
    return iterator


def _train_batch(task: Task, batch: Any, batch_idx: int, accumulate: int) -> tuple[torch.Tensor, Any]:
    if batch_idx % accumulate == 0:
        task.optimizer.zero_grad(set_to_none=True)
    if task.precision.dtype is None:
        result = task.training_step(batch, batch_idx)
    else:
        with task.precision.autocast():
            result = task.training_step(batch, batch_idx)
    if isinstance(result, torch.Tensor):
        loss, outputs = result, None
    elif isinstance(result, Mapping) and "loss" in result:
        loss, outputs = result["loss"], result.get("outputs", result)
    else:
        raise TaskError(f"{type(task).__name__}.training_step() must return a loss tensor "
                        f"or a dict with 'loss'; got {type(result).__name__}")
    task.backward(loss if accumulate == 1 else loss / accumulate)
    if (batch_idx + 1) % accumulate == 0 or batch_idx + 1 == task.state.epoch_length:
        task.optimizer_step()
    return loss.detach(), outputs


def _step_scheduler_per_epoch(task: Task, metrics: Mapping[str, float]) -> None:
    scheduler = task.scheduler
    if scheduler is None or task.scheduler_interval != "epoch":
        return
    with warnings.catch_warnings():
        # A run resumed exactly at an epoch's end steps the scheduler before its first
        # optimizer.step() in this process: correct here, so torch's warning is noise.
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step()`")
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if "loss" in metrics:
                scheduler.step(metrics["loss"])
        else:
            scheduler.step()


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else 1
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return 1


def evaluate(task: Task, stage: str, loader: Any) -> dict[str, float]:
    """Run ``loader`` through ``task``'s ``validate`` or ``test`` stage; return the mean metrics.

    Each batch's scalar results are weighted by its size; under DDP the means are
    averaged over the processes. Runs inside :func:`session`.

    Raises:
        TaskError: ``loader`` is None (the task's data has no such split).
    """
    if loader is None:
        raise TaskError(f"{type(task).__name__}.build_data() gave no "
                        f"{'validation' if stage == 'validate' else 'test'} data")
    hooks = task.hooks
    step_fn = task.validation_step if stage == "validate" else task.test_step
    batch_stage = f"{stage}_batch"
    hooks.enter(stage, loader=loader)
    sums: dict[str, torch.Tensor | float] = {}
    count = 0
    was_training = task.model.training
    task.model.eval()
    try:
        with torch.no_grad():
            for batch_idx, batch in enumerate(loader):
                batch = task.prepare_batch(batch)
                hooks.enter(batch_stage, batch=batch, batch_idx=batch_idx)
                if task.precision.dtype is None:
                    result = step_fn(batch, batch_idx)
                else:
                    with task.precision.autocast():
                        result = step_fn(batch, batch_idx)
                if isinstance(result, torch.Tensor):
                    result = {"loss": result}
                n = _batch_size(batch)
                for key, value in (result or {}).items():
                    if isinstance(value, torch.Tensor):
                        if value.numel() != 1:
                            continue
                        value = value.detach().float()
                    elif not isinstance(value, (int, float)):
                        continue
                    sums[key] = sums.get(key, 0.0) + value * n
                count += n
                hooks.provide(batch_stage, outputs=result)
                hooks.exit(batch_stage)
        metrics = {k: float(v) / max(count, 1) for k, v in sums.items()}
        metrics = task.backend.reduce_mean(metrics)
    except BaseException:
        hooks.drop(stage)
        raise
    finally:
        task.model.train(was_training)
    hooks.provide(stage, metrics=metrics)
    hooks.exit(stage)
    return metrics
