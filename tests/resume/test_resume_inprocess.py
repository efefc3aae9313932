"""Exact resume from every checkpoint a run writes, in one process (no run machinery).

A run of ``Faulty`` saves a checkpoint every 5 steps and at each epoch's start (48 steps
in all); a fresh task restored from each of them, trained to the end, must end with the
uninterrupted run's weights, optimiser and scheduler, bit for bit — mid-epoch, at an
epoch's start (after that epoch's iterator drew from the RNG), at an epoch's last batch,
for a seekable DataModule and for a plain shuffled DataLoader, and in the middle of a
gradient-accumulation window. A stop requested during a validation (the checkpoint is
then taken before the next epoch's iterator exists) resumes exactly too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faulty_task import Faulty
from resume_checks import assert_tensors_equal

from workbench.extensions.checkpoint import Checkpoint, list_checkpoints, load_checkpoint


class StopInValidation:
    """Requests a stop during the validation of epoch ``epoch`` (once)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def before_validate_batch(self, batch_idx: int, state, task) -> None:
        if state.epoch == self.epoch and batch_idx == 1 and not state.stop_requested:
            task.request_stop("test")


def _task(variant: str, folder: Path | None, *extensions: object) -> Faulty:
    """A task; with a folder, it saves a checkpoint every 5 steps and each epoch's start."""
    loader, _, accumulate = variant.partition("+accumulate")
    config = {"loader": loader, "accumulate_grad_batches": int(accumulate or 1)}
    saving = [Checkpoint(folder, every_steps=5, keep=1000)] if folder is not None else []
    return Faulty(config, device="cpu", extensions=[*saving, *extensions])


def _end(task: Faulty) -> dict:
    return {"model": task.raw_model.state_dict(), "optimizer": task.optimizer.state_dict(),
            "scheduler": task.scheduler.state_dict(), "step": task.state.step}


@pytest.fixture(scope="module", params=["datamodule", "dataloader", "dataloader+accumulate3"])
def uninterrupted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict]:
    """An uninterrupted run with a checkpoint every 5 steps and at each epoch's start."""
    folder = tmp_path_factory.mktemp(f"uninterrupted-{request.param}")
    task = _task(request.param, folder)
    task.fit()
    return request.param, folder, _end(task)


def test_resuming_from_every_checkpoint_ends_bit_for_bit_equal(uninterrupted) -> None:
    loader, folder, end = uninterrupted
    checkpoints = sorted(list_checkpoints(folder))
    steps = [step for step, _ in checkpoints]
    assert {16, 32, 15, 20, 45, 48} <= set(steps), steps
    for step, path in checkpoints:
        task = _task(loader, None)
        task.restore(load_checkpoint(path))
        assert task.state.step == step
        task.fit()
        assert_tensors_equal(_end(task), end, f"resumed from step {step}")


def test_a_stop_during_validation_resumes_exactly(uninterrupted, tmp_path: Path) -> None:
    loader, _, end = uninterrupted
    first = _task(loader, tmp_path / "first", StopInValidation(epoch=1))
    first.fit()
    assert first.state.stopped_early and first.state.step == 32
    assert (first.state.epoch, first.state.batch_in_epoch) == (2, 0)  # validated; next epoch not begun
    step, path = list_checkpoints(tmp_path / "first")[0]
    assert step == 32
    task = _task(loader, None)
    task.restore(load_checkpoint(path))
    task.fit()
    assert_tensors_equal(_end(task), end, "resumed after a stop during validation")
