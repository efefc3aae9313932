"""Two real gloo processes: a stop request that lands on one rank right after the ranks
agreed (a signal between the all-reduce and the loop reading the flag) is carried into the
next agreement, so both ranks stop after the same batch. The loop used to overwrite the flag
with the agreed value (this request was lost: both trained on to the end), and where the
signal came after that write, one rank left the loop while the other waited in its next
collective forever."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import TensorDataset

from workbench import DataModule, Task
from workbench.core.backends import DDPBackend
from workbench.extensions import assemble_task

#: The agreement (one per batch, counted from 1) after which rank 1 is "signalled".
LATE_AT = 3


class Tiny(Task):
    """A linear fit over 64 points, 8 a batch: 4 batches per rank and epoch."""

    @dataclass
    class Config:
        epochs: int = 5
        batch_size: int = 8

    def build_data(self) -> DataModule:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 2, generator=g)
        return DataModule(train=TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=8, seed=0)

    def build_model(self) -> nn.Module:
        return nn.Linear(2, 1)

    def build_criterion(self) -> nn.Module:
        return nn.MSELoss()


class LateSignal(DDPBackend):
    """DDP whose rank 1 gets a stop request just after its LATE_AT-th agreement returns."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.task: Task | None = None

    def agree(self, flag: bool) -> bool:
        agreed = super().agree(flag)
        self.calls += 1
        if self.rank == 1 and self.calls == LATE_AT and self.task is not None:
            self.task.state.stop_requested = True  # what the signal handler does, at the worst moment
        return agreed


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    backend = LateSignal()
    task = assemble_task(Tiny, None, run_dir=Path(out) / f"rank{rank}", sink=None, device="cpu", backend=backend)
    backend.task = task
    try:
        task.fit()
        Path(out, f"rank{rank}.txt").write_text(f"{task.state.step} {task.state.stopped_early}")
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_stop_after_the_agreement_on_one_rank_stops_both_at_the_next_batch(tmp_path: Path) -> None:
    context = mp.start_processes(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + 120
    try:
        while not context.join(timeout=max(0.1, deadline - time.monotonic())):
            assert time.monotonic() < deadline, "the ranks hung: one left the loop, the other waits"
    finally:
        for process in context.processes:
            if process.is_alive():  # the hang this guards against
                process.kill()
    results = {rank: Path(tmp_path, f"rank{rank}.txt").read_text().split() for rank in (0, 1)}
    # agreement 1 is fit's start, 2 and 3 follow batches 1 and 2: requested on rank 1 after
    # the third, carried into the fourth (after batch 3), where both stop — mid-epoch (4 a rank)
    assert results == {0: ["3", "True"], 1: ["3", "True"]}, results
