"""What a training process on a compute node reads at start, handed over in a file.

A trainer in journal mode still reads a few things before it trains: its attempt and the
start time of the run, the steps of its pipeline that earlier attempts completed, and how
far each metric's points reach (to warn about points lost before the checkpoint it resumes
from, and to count what it sets aside). Locally it reads them from the index. A compute
node must not open the index — SQLite in WAL mode over NFS or Lustre breaks even for
readers (the ``-shm`` file is shared memory) — so the launch host writes the answers into
``attempts/<n>/context.json`` before it submits the attempt, and the node's trainer reads
them through :class:`ContextReader`, which has the read methods of ``RunIndex`` that
``workbench.store.journal.JournalIndex`` forwards to its ``reader``.

The checkpoints an attempt may resume from are on disk when it is submitted (the earlier
attempt has ended), so the point spans are computed for each of their steps; a step not
in the file (none should be asked) reads as "no points".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from workbench.store import Run, RunIndex, RunStatus
from workbench.store.records import RunStep, StepStatus

__all__ = ["CONTEXT_FORMAT", "ContextReader", "context_path", "open_reader", "write_context"]

#: The layout version of ``context.json``.
CONTEXT_FORMAT = 1
_ALL = 2**63 - 1


def context_path(run_dir: Path, attempt: int) -> Path:
    """Where attempt ``attempt``'s start-up context is written."""
    return Path(run_dir) / "attempts" / str(int(attempt)) / "context.json"


def write_context(index: RunIndex, run: Run, run_dir: Path, attempt: int) -> Path:
    """Write what attempt ``attempt`` of ``run`` reads at start (atomically)."""
    from workbench.checkpoint_names import checkpoint_folder, step_files

    uptos = sorted({step for step, _ in step_files(checkpoint_folder(run_dir))} | {_ALL})
    spans = {key: {str(upto): list(index.step_span(run.id, key, upto)) for upto in uptos}
             for key in index.metric_keys(run.id)}
    steps = [{"position": s.position, "name": s.name, "status": s.status.value, "attempt": s.attempt,
              "started_at": s.started_at, "ended_at": s.ended_at, "error": s.error}
             for s in index.run_steps(run.id)]
    data = {"format": CONTEXT_FORMAT, "run": run.id, "attempt": int(attempt), "written_at": time.time(),
            "created_at": run.created_at, "started_at": run.started_at, "name": run.name,
            "parent_id": run.parent_id, "steps": steps, "spans": spans}
    path = context_path(run_dir, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".context.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
    return path


class ContextReader:
    """The index's answers for one attempt's start, read from its ``context.json``.

    Args:
        path: The file.
        attempt: The attempt that reads it, when it reads an earlier attempt's file (a
            requeued job whose watcher did not write this attempt's in time).
    """

    def __init__(self, path: Path, attempt: int | None = None) -> None:
        self.path = Path(path)
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if int(data.get("format", 0)) > CONTEXT_FORMAT:
            raise ValueError(f"{self.path} has format {data.get('format')}; this workbench reads up to "
                             f"{CONTEXT_FORMAT}: upgrade it on the compute nodes")
        if attempt is not None:
            data["attempt"] = int(attempt)
        self.data = data

    def get_run(self, run_id: str) -> Run | None:
        """The run's row as far as a trainer needs it: id, attempt, start time."""
        if run_id != self.data["run"]:
            return None
        now = time.time()
        return Run(id=run_id, status=RunStatus.QUEUED, created_at=self.data.get("created_at") or now,
                   updated_at=now, name=self.data.get("name"), started_at=self.data.get("started_at"),
                   parent_id=self.data.get("parent_id"), attempt=int(self.data["attempt"]))

    def run_steps(self, run_id: str) -> list[RunStep]:
        """The run's pipeline steps as the index had them at submission."""
        if run_id != self.data["run"]:
            return []
        return [RunStep(run_id, s["position"], s["name"], StepStatus(s["status"]), s.get("attempt"),
                        s.get("started_at"), s.get("ended_at"), s.get("error")) for s in self.data["steps"]]

    def metric_keys(self, run_id: str) -> list[str]:
        """The run's metric keys at submission."""
        return sorted(self.data["spans"]) if run_id == self.data["run"] else []

    def step_span(self, run_id: str, key: str, upto: int) -> tuple[int, int | None, int | None]:
        """As ``RunIndex.step_span``, for the steps computed at submission."""
        span = self.data["spans"].get(key, {}).get(str(min(int(upto), _ALL))) if run_id == self.data["run"] else None
        return (int(span[0]), span[1], span[2]) if span else (0, None, None)

    def close(self) -> None:
        """Nothing to close (for ``JournalIndex.close``)."""


#: Seconds a requeued attempt's trainer waits for the watcher to write its context.
REQUEUE_CONTEXT_WAIT = 30.0


def open_reader(spec: Any, run_dir: Path, attempt: int, wait: float = REQUEUE_CONTEXT_WAIT) -> Any:
    """The trainer's reader: the attempt's ``context.json`` where the launch host wrote one
    (a cluster run), else the run index itself.

    A cluster run never opens the index from its node. An attempt that Slurm started again
    after a requeue (``workbench.runs.cluster_requeue``) before its watcher wrote its file
    waits up to ``wait`` seconds for it, then reads the newest earlier attempt's.
    """
    path = context_path(run_dir, attempt)
    if path.is_file():
        return ContextReader(path)
    if not (Path(run_dir) / "cluster.json").is_file():
        return RunIndex(spec.index)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and not path.is_file():
        time.sleep(0.5)
    if path.is_file():
        return ContextReader(path)
    for earlier in range(int(attempt) - 1, 0, -1):
        if context_path(run_dir, earlier).is_file():
            return ContextReader(context_path(run_dir, earlier), attempt=attempt)
    raise FileNotFoundError(f"{path} is missing (the launch host writes it before the attempt starts)")
