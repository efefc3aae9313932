"""Per-attempt outcome files: ``attempts/<n>/outcome.json`` in the run folder.

Each attempt's end is written here atomically (a temporary file, fsync, rename) by whoever
concludes it — the training process when it reports, its supervisor in every case — and
the index mirrors it. Watchers and ``workbench index rebuild`` read these files, so a run's
history survives the loss of the index. See DESIGN.md, "Who owns a run".
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.store import RunStatus

__all__ = ["OUTCOME_FORMAT", "Outcome", "outcome_path", "read_outcome", "read_outcomes", "write_outcome"]

#: The layout version of ``outcome.json``.
OUTCOME_FORMAT = 1


@dataclass(frozen=True)
class Outcome:
    """How one attempt of a run ended.

    Attributes:
        attempt: The attempt (1 for the first).
        status: A final status (``completed``, ``failed``, ``stopped``, ``interrupted``, ``pruned``).
        ended_at: Unix seconds.
        exit_code: The training process's exit code, if known.
        signal: The signal that ended it, if any.
        reason: One line: the error, or why it stopped.
        last_step: The last step it reached, if known.
        started_at: When the attempt started, if known.
    """

    attempt: int
    status: RunStatus
    ended_at: float
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    last_step: int | None = None
    started_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (with ``format``)."""
        data = asdict(self)
        data["status"] = self.status.value
        data["format"] = OUTCOME_FORMAT
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        """Read the JSON form (unknown keys, from a newer workbench, are ignored)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["status"] = RunStatus.parse(known["status"])
        return cls(**known)


def outcome_path(run_dir: Path, attempt: int) -> Path:
    """Where attempt ``attempt``'s outcome is written."""
    return Path(run_dir) / "attempts" / str(int(attempt)) / "outcome.json"


def write_outcome(run_dir: Path, outcome: Outcome) -> Path:
    """Write an attempt's outcome atomically (durable before it is visible)."""
    path = outcome_path(run_dir, outcome.attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".outcome.{os.getpid()}.{time.monotonic_ns()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(outcome.to_dict(), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_outcome(run_dir: Path, attempt: int) -> Outcome | None:
    """An attempt's outcome, or ``None`` (none written, or unreadable)."""
    try:
        return Outcome.from_dict(json.loads(outcome_path(run_dir, attempt).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_outcomes(run_dir: Path) -> list[Outcome]:
    """Every readable attempt outcome of a run, by attempt."""
    folder = Path(run_dir) / "attempts"
    if not folder.is_dir():
        return []
    found = [read_outcome(run_dir, int(p.name)) for p in folder.iterdir() if p.name.isdigit()]
    return sorted((o for o in found if o is not None), key=lambda o: o.attempt)
