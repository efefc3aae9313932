"""A tiny task for the fault-injection tests (copied into a test project as tasks/faulty.py).

It trains a small MLP with dropout (the dropout masks draw from torch's RNG, so a resume
that restores the RNG wrongly ends with other weights) on a few hundred shuffled samples,
with Adam and a per-epoch LR schedule. Its config says where its first attempt hurts
itself:

- ``kill_phase="batch"``: SIGKILL in the middle of batch ``kill_at_step`` (after the forward
  pass, before the update);
- ``kill_phase="validate"``: SIGKILL in the middle of the first validation that starts at
  or after step ``kill_at_step``;
- ``kill_phase="checkpoint"``: the first checkpoint save at or after ``kill_at_step`` writes
  half a temporary file into the checkpoints folder, then SIGKILLs itself;
- ``kill_phase="machine"``: like ``batch``, but the run's supervisor is SIGKILLed too (a
  crash of the whole machine);
- ``hold_at_step``: after that batch, wait (up to a few minutes) until a stop is requested,
  with a file ``held`` in the run folder saying so — a test stops the run at a known step.

Only the first attempt (``$WORKBENCH_ATTEMPT`` is ``1``, set by the supervisor) does any of
this: a resumed attempt keeps the same config and must run through — except that
``kill2_phase`` and ``kill2_at_step`` kill the second attempt the same way (a resumed run
that crashes again).
"""

from __future__ import annotations

import io
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workbench import DataModule, Task
from workbench.extensions import Checkpoint


def first_attempt() -> bool:
    """Whether this is the run's first attempt (the supervisor says which one it is)."""
    return os.environ.get("WORKBENCH_ATTEMPT", "1") == "1"


def kill_plan(config) -> tuple[str, int]:
    """``(phase, step)`` where this attempt must die, or ``("", -1)``."""
    attempt = os.environ.get("WORKBENCH_ATTEMPT", "1")
    if attempt == "1":
        return config.kill_phase, config.kill_at_step
    if attempt == "2":
        return config.kill2_phase, config.kill2_at_step
    return "", -1


def die(task, with_supervisor: bool = False) -> None:
    """SIGKILL this process (and first its supervisor, for a 'machine crash').

    The metric points logged so far are flushed first, so that the index holds points past
    the last checkpoint: the resumed attempt must set them aside and replay them.
    """
    if task.sink is not None and hasattr(task.sink, "flush"):
        task.sink.flush()
    if with_supervisor:
        parent = os.getppid()
        try:
            with open(f"/proc/{parent}/cmdline", "rb") as fh:
                cmdline = fh.read().decode(errors="replace")
        except OSError:
            cmdline = ""
        if "workbench.runs.supervisor" not in cmdline:
            raise RuntimeError(f"the parent process {parent} is not a run supervisor: {cmdline!r}")
        os.kill(parent, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # pragma: no cover - the signal arrives first


class KillSwitch:
    """Kills the process during validation, or holds it at a step until a stop arrives."""

    def __init__(self, phase: str, at_step: int, hold_at: int) -> None:
        self.phase = phase
        self.at_step = at_step
        self.hold_at = hold_at if first_attempt() else -1

    def before_validate_batch(self, batch_idx: int, state, task) -> None:
        if self.phase == "validate" and state.step >= self.at_step >= 0 and batch_idx == 1:
            die(task)

    def after_batch(self, state, task) -> None:
        if not (self.hold_at >= 0 and state.step == self.hold_at):
            return
        if task.run_dir is not None and task.backend.is_main:
            (Path(task.run_dir) / "held").write_text(str(state.step))
        deadline = time.monotonic() + 300
        while not state.stop_requested and time.monotonic() < deadline:
            time.sleep(0.02)


class FlakyCheckpoint(Checkpoint):
    """A Checkpoint whose chosen save dies half-way through writing its temporary file."""

    def __init__(self, kill_at: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kill_at = kill_at

    def save(self, task, reason):
        step = task.state.step
        if (self.kill_at >= 0 and step >= self.kill_at
                and (step != self._last_step or reason == "stop")):
            payload = task.checkpoint_state()
            if task.backend.is_main:
                buffer = io.BytesIO()
                torch.save(payload, buffer)
                data = buffer.getvalue()
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / f".step-{step:09d}-crashed.tmp"
                with open(tmp, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                    fh.flush()
                    os.fsync(fh.fileno())
                die(task)
        return super().save(task, reason)


class Faulty(Task):
    """A small dropout MLP on noisy sine data that can be told to crash."""

    @dataclass
    class Config:
        epochs: int = 3
        lr: float = 0.01
        batch_size: int = 16
        samples: int = 256
        hidden: int = 32
        dropout: float = 0.2
        seed: int = 0
        loader: str = "datamodule"  # or "dataloader": a plain shuffled DataLoader
        every_steps: int = 5  # also checkpoint every this many steps (0: at epoch ends only)
        accumulate_grad_batches: int = 1
        kill_phase: str = ""  # batch, validate, checkpoint or machine: where attempt 1 dies
        kill_at_step: int = -1
        kill2_phase: str = ""  # where attempt 2 dies
        kill2_at_step: int = -1
        hold_at_step: int = -1

    def build_data(self):
        c = self.config
        g = torch.Generator().manual_seed(1234)
        x = torch.rand(c.samples + 64, 1, generator=g) * 6 - 3
        y = torch.sin(x) + 0.1 * torch.randn(c.samples + 64, 1, generator=g)
        train = TensorDataset(x[: c.samples], y[: c.samples])
        val = TensorDataset(x[c.samples:], y[c.samples:])
        if c.loader == "dataloader":  # RandomSampler: the order comes from torch's global RNG
            return (DataLoader(train, batch_size=c.batch_size, shuffle=True),
                    DataLoader(val, batch_size=16))
        return DataModule(train=train, val=val, batch_size=c.batch_size, eval_batch_size=16, seed=c.seed)

    def build_model(self) -> nn.Module:
        h = self.config.hidden
        return nn.Sequential(nn.Linear(1, h), nn.Tanh(), nn.Dropout(self.config.dropout),
                             nn.Linear(h, h), nn.Tanh(), nn.Dropout(self.config.dropout), nn.Linear(h, 1))

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()

    def build_scheduler(self, optimizer):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)

    def training_step(self, batch, batch_idx):
        result = super().training_step(batch, batch_idx)
        phase, step = kill_plan(self.config)
        if phase in ("batch", "machine") and self.state.step + 1 == step:
            die(self, with_supervisor=phase == "machine")
        return result

    def extensions(self):
        c = self.config
        phase, step = kill_plan(c)
        return [
            FlakyCheckpoint(step if phase == "checkpoint" else -1, every_steps=c.every_steps or None),
            KillSwitch(phase, step, c.hold_at_step),
        ]
