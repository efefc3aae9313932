"""System metrics of a cluster run, sampled inside the job (rank 0's node).

A local run's supervisor sits beside its training processes and samples them
(``workbench.runs.sampler``); a cluster run's watcher is on the launch host and cannot. So
rank 0 of a cluster run starts :func:`start_job_sampler`: a daemon thread with the same
:class:`~workbench.runs.sampler.SystemSampler` over its node's training processes — the
trainer itself, or under DDP its ``torch.distributed.run`` agent and every rank on the
node — plus the node's memory and, where NVML answers, its visible GPUs. The points
(``sys/...``, stored against time) go through the run's journal like every other point,
so the watcher ingests them into the index. Nothing runs on the training loop's thread;
the thread ends when the journal writer is closed.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["start_job_sampler"]


def start_job_sampler(writer: Any, backend: str, every: float | None = None) -> threading.Thread | None:
    """Sample this node's training processes into ``writer`` every ``every`` seconds.

    Args:
        writer: The journal writer (its ``log``; once closed, ``log`` raises and the thread
            ends).
        backend: ``single`` (the trainer is the root) or ``ddp`` (its parent, the
            ``torch.distributed.run`` agent, is: every rank of the node is counted).
        every: Seconds between samples (default ``WORKBENCH_SYS_EVERY``, else 5).

    Returns:
        The thread, or None where nothing can be sampled (no psutil).
    """
    from workbench.runs.sampler import SystemSampler

    every = float(os.environ.get("WORKBENCH_SYS_EVERY", "5")) if every is None else every
    root = os.getppid() if backend == "ddp" else os.getpid()
    try:
        sampler = SystemSampler(root, every=every)
    except Exception:  # noqa: BLE001 - system metrics are a convenience, never a failure
        return None
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                for key, value, step, _ in sampler.sample():
                    writer.log(key, value, step)
                stop.wait(every)
        except Exception:  # noqa: BLE001 - the writer was closed (the attempt ended): done
            pass
        finally:
            sampler.close()

    thread = threading.Thread(target=run, name="workbench-job-sampler", daemon=True)
    thread.start()
    return thread
