"""Inside a DDP cluster job: ``python -m workbench.runs.cluster_job -- TORCHRUN ARGS...``.

A single-process job ``exec``s the trainer, so Slurm's signals reach it directly. Under
``torch.distributed.run`` that does not work: torchrun takes SIGINT for its own death,
tears its workers down and exits, so the ranks never agree on a graceful stop. This small
process is the batch step instead: it starts torchrun, and forwards SIGINT or SIGTERM to
torchrun's workers only (as the local supervisor does), then exits as torchrun did — with
its exit code, or killed by the same signal — so the job's state tells the watcher how it
ended. No torch here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

__all__ = ["main"]


def _workers(pid: int) -> list[int]:
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=False)]
    except Exception:  # noqa: BLE001 - torchrun may be gone already
        return []


def main(argv: list[str] | None = None) -> int:
    """Run the command after ``--``; forward stop signals to its children; exit as it did."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--slurm-rendezvous":
        if len(args) != 3 or not args[1].isdigit():
            print("usage: python -m workbench.runs.cluster_job --slurm-rendezvous NPROC RUN_DIR", file=sys.stderr)
            return 2
        from workbench.errors import WorkbenchError
        from workbench.runs.cluster_nodes import slurm_rendezvous, torchrun_command

        try:
            rendezvous = slurm_rendezvous(os.environ)
        except WorkbenchError as exc:
            print(f"cluster_job: {exc}", file=sys.stderr, flush=True)
            return 2
        print(f"cluster_job: node {rendezvous.node_rank} of {rendezvous.nnodes} on {os.uname().nodename}, "
              f"rendezvous at {rendezvous.endpoint}", file=sys.stderr, flush=True)
        args = torchrun_command(sys.executable, int(args[1]), args[2], rendezvous)
    elif args and args[0] == "--":
        args = args[1:]
    if not args:
        print("usage: python -m workbench.runs.cluster_job -- COMMAND...", file=sys.stderr)
        return 2
    child = subprocess.Popen(args)

    def forward(signum: int, frame: Any) -> None:
        # SIGUSR1 (Slurm's time-limit or preemption warning) as itself: the ranks stop, and
        # rank 0 then requeues the job (workbench.runs.cluster_requeue); a stop as SIGINT.
        sent = signal.SIGUSR1 if signum == signal.SIGUSR1 else signal.SIGINT
        for pid in _workers(child.pid) or [child.pid]:
            try:
                os.kill(pid, sent)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGUSR1, forward)
    code = child.wait()
    if code < 0:  # killed by a signal: end the same way, so Slurm records the signal
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())
