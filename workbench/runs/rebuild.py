"""``workbench index rebuild``: runs back in the index from their folders.

A run folder says most of what its row said: ``run.toml`` holds the task, the resolved
config, the device, backend, name, tags and snapshot commit; ``attempts/<n>/outcome.json``
how each attempt ended; ``output.log`` which attempts started; ``checkpoints/`` where a
resume would start; the trainer lock whether a training process lives now. What only the
index held — metric curves, events, progress, the git HEAD, branch and dirty flag the
launch recorded, and a fork's parent — cannot come back.

Rows that exist are left alone. Each folder is read under its launch lock, so a launch in
progress (whose row is not written yet) is skipped, never duplicated. See DESIGN.md, "Who
owns a run".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.checkpoint_names import checkpoint_folder, step_files
from workbench.errors import WorkbenchError
from workbench.runs.housekeeping import NEW_FOLDER_GRACE_S, run_folders
from workbench.runs.locks import LAUNCH_LOCK, TRAINER_LOCK, FileLock, LockHeld, trainer_alive
from workbench.runs.outcome import Outcome, read_outcomes
from workbench.runs.spec import RunSpec, read_spec
from workbench.store import InvalidValue, RunStatus
from workbench.store.ids import RUN_ID_ALPHABET

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.store import RunIndex

__all__ = ["LOST_WITH_THE_INDEX", "NO_OUTCOME_ERROR", "RebuildReport", "RebuiltRun", "rebuild_index"]

#: What a rebuilt run does not get back besides its curves and events (said by the command
#: and in docs/cli.md).
LOST_WITH_THE_INDEX = "their progress, the git HEAD, branch and dirty flag recorded at launch, or a fork's parent"

#: The error a rebuilt run gets when its last attempt left no outcome and no trainer lives.
NO_OUTCOME_ERROR = ("rebuilt from its folder: its last attempt left no outcome and its processes "
                    "are gone; resume it to continue")

_ATTEMPT_HEADER = re.compile(rb"^=== attempt (\d+) ")
_EPOCH_MS = 1_704_067_200_000  # workbench.store.ids: the time part of a run id counts from here


@dataclass(frozen=True)
class RebuiltRun:
    """A run put back in the index.

    Attributes:
        id: The run id.
        name: Its name (``None`` when its name is taken by another run now).
        task: The task's name.
        status: The status it got.
        attempt: Its latest attempt.
        checkpoint_step: The step of its newest step checkpoint, if any.
        note: One line about it (a dropped name, a live trainer), or ``""``.
    """

    id: str
    name: str | None
    task: str
    status: RunStatus
    attempt: int
    checkpoint_step: int | None
    note: str = ""


@dataclass(frozen=True)
class RebuildReport:
    """What ``index rebuild`` did.

    Attributes:
        rebuilt: Runs put back.
        kept: Ids of run folders whose runs were in the index already (left alone).
        skipped: ``(folder name, why)`` for the folders it could not read or must not touch.
    """

    rebuilt: tuple[RebuiltRun, ...]
    kept: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def _created_at(run_id: str, fallback: float) -> float:
    """When a run was created, from the time part of its id (see ``new_run_id``)."""
    if len(run_id) != 12 or any(c not in RUN_ID_ALPHABET for c in run_id):
        return fallback
    ms = 0
    for char in run_id[:8]:
        ms = ms * 32 + RUN_ID_ALPHABET.index(char)
    return (ms + _EPOCH_MS) / 1000


def _attempts_in_log(run_dir: Path) -> int:
    """The last attempt whose start the supervisor wrote to ``output.log`` (0: none)."""
    last = 0
    try:
        with open(run_dir / "output.log", "rb") as log:
            for line in log:
                match = _ATTEMPT_HEADER.match(line)
                if match:
                    last = max(last, int(match.group(1)))
    except OSError:
        pass
    return last


def _trainer_pid(run_dir: Path) -> int | None:
    try:
        text = (run_dir / TRAINER_LOCK).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _row_fields(spec: RunSpec, run_dir: Path, outcomes: list[Outcome], live: bool,
                snapshot: str | None) -> dict[str, Any]:
    """The columns of a run's row, as its folder tells them."""
    attempt = max([1, _attempts_in_log(run_dir), *(o.attempt for o in outcomes)])
    last = outcomes[-1] if outcomes and outcomes[-1].attempt == attempt else None
    fallback = (run_dir / "run.toml").stat().st_mtime
    fields: dict[str, Any] = dict(
        id=spec.id, name=spec.name or None, task=spec.task, device=spec.device, backend=spec.backend,
        nproc=spec.nproc, precision=spec.precision, config=spec.config, tags=list(spec.tags),
        profile=spec.profile or None, run_dir=str(run_dir), snapshot_commit=snapshot,
        attempt=attempt, created_at=_created_at(spec.id, fallback),
        started_at=next((o.started_at for o in outcomes if o.started_at is not None), None),
    )
    if spec.evaluation_of:  # an evaluation of another run's checkpoint, listed under that run
        from workbench.store import EVALUATION

        fields.update(kind=EVALUATION, parent_id=spec.evaluation_of, parent_checkpoint=spec.weights or None)
    elif getattr(spec, "kind", "task") == "script":
        fields.update(kind="script", command=list(getattr(spec, "command", []) or []))
    if live:
        fields.update(status=RunStatus.RUNNING, heartbeat_at=time.time(), pid=_trainer_pid(run_dir),
                      status_reason="rebuilt from its folder while a training process holds it")
    elif last is not None:
        failed = last.status in (RunStatus.FAILED, RunStatus.INTERRUPTED)
        fields.update(status=last.status, ended_at=last.ended_at, exit_code=last.exit_code,
                      signal=last.signal, step=last.last_step,
                      error=(last.reason or None) if failed else None,
                      status_reason=None if failed else (last.reason or None))
    else:
        log = run_dir / "output.log"  # its last write is the run's last sign of life
        ended = max([o.ended_at for o in outcomes] + [fallback, log.stat().st_mtime if log.is_file() else 0.0])
        fields.update(status=RunStatus.INTERRUPTED, ended_at=ended, error=NO_OUTCOME_ERROR)
    return fields


def _rebuild_one(index: RunIndex, run_dir: Path, refs: dict[str, str], taken: set[str]) -> RebuiltRun:
    """Put one folder's run back (the caller holds the folder's launch lock)."""
    from workbench.runs.artifacts import record_artifacts

    spec = read_spec(run_dir)
    if spec.id != run_dir.name:
        raise WorkbenchError(f"run.toml names run {spec.id!r}, but it lies in folder {run_dir.name!r}")
    live = trainer_alive(run_dir)
    fields = _row_fields(spec, run_dir, read_outcomes(run_dir), live, spec.snapshot or refs.get(spec.id))
    notes = []
    if fields["name"] is not None and fields["name"] in taken:
        notes.append(f"its name {fields['name']!r} belongs to another run now; it has none")
        fields["name"] = None
    if live:
        notes.append("a training process holds it; if it started before the index was lost, its "
                     "progress goes to the lost index: stop it and resume it to see it here")
    try:
        run = index.create_run(**fields)
    except InvalidValue as exc:
        if "named" not in str(exc):
            raise WorkbenchError(f"cannot add run {spec.id}: {exc}") from None
        notes.append(f"its name {fields['name']!r} was taken meanwhile; it has none")
        fields["name"] = None
        run = index.create_run(**fields)
    if run.name:
        taken.add(run.name)
    record_artifacts(index, run.id, run_dir)
    steps = step_files(checkpoint_folder(run_dir))
    index.add_event(run.id, "rebuilt", f"put back in the index from its folder ({run.status})",
                    {"status": run.status.value, "attempt": run.attempt,
                     "checkpoint": steps[0][1].name if steps else None})
    return RebuiltRun(run.id, run.name, spec.task, run.status, run.attempt,
                      steps[0][0] if steps else None, "; ".join(notes))


def rebuild_index(project: Project, index: RunIndex) -> RebuildReport:
    """Recreate the rows of the runs whose folders have none.

    A folder without a readable ``run.toml`` is skipped (and listed); the others go on.
    A folder whose launch lock is held is a launch in progress and is skipped too.

    Returns:
        What was rebuilt, kept and skipped.
    """
    from workbench.snapshot import SnapshotError, list_refs

    try:
        refs = list_refs(project.root, state_dir=project.state_dir)
    except SnapshotError:
        refs = {}
    rebuilt: list[RebuiltRun] = []
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    taken = index.run_names()
    now = time.time()
    for run_dir in run_folders(project):
        if index.get_run(run_dir.name) is not None:
            kept.append(run_dir.name)
            continue
        if not (run_dir / "run.toml").is_file() and now - run_dir.stat().st_mtime < NEW_FOLDER_GRACE_S:
            skipped.append((run_dir.name, "just made, without run.toml (a launch may be starting)"))
            continue
        try:
            lock = FileLock(run_dir / LAUNCH_LOCK).acquire(wait=0)
        except LockHeld:
            skipped.append((run_dir.name, "a launch is still writing it"))
            continue
        except OSError as exc:
            skipped.append((run_dir.name, f"cannot lock it: {exc.strerror or exc}"))
            continue
        try:
            if index.get_run(run_dir.name) is not None:
                kept.append(run_dir.name)  # its launch finished meanwhile
            else:
                rebuilt.append(_rebuild_one(index, run_dir, refs, taken))
        except WorkbenchError as exc:
            skipped.append((run_dir.name, str(exc)))
        finally:
            lock.release()
    return RebuildReport(tuple(rebuilt), tuple(kept), tuple(skipped))
