"""Resume and fork: a new attempt of a run, or a new run, from a checkpoint.

The workbench process only checks and starts; the training process loads the checkpoint
(``workbench.runs.train``). After a resumed attempt, :func:`compare_replay` checks the
points it logged again against those the earlier attempt had logged after the checkpoint.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.checkpoint_names import FORK_START_FILE, best_file, checkpoint_folder, step_files, step_of
from workbench.errors import WorkbenchError
from workbench.runs.launch import start_supervisor
from workbench.runs.liveness import SHUTDOWN_WAIT_S, owner_alive, reconcile, wait_for_owner
from workbench.runs.locks import trainer_alive
from workbench.runs.present import flatten_config
from workbench.runs.locks import launch_lock
from workbench.runs.sampler import is_system_key
from workbench.runs.spec import RunSpec, read_spec, run_dir_of, toml_literal, write_spec
from workbench.store import Run, RunIndex, RunStatus, new_run_id

if TYPE_CHECKING:
    from workbench.project import Project

__all__ = [
    "FORK_CODE",
    "NONDETERMINISTIC_SUFFIXES",
    "compare_replay",
    "fork_run",
    "replay_summary",
    "resume_run",
    "step_checkpoints",
]

#: Where a fork's code comes from: the parent's snapshot (the same code), or the working tree now.
FORK_CODE = ("snapshot", "worktree")

#: Metric keys that measure time, not training: they never replay exactly.
NONDETERMINISTIC_SUFFIXES = ("_per_s", "/time", "_time", "/seconds")


def step_checkpoints(run_dir: Path) -> list[Path]:
    """The run's step checkpoints, newest first (whether they load is checked at resume)."""
    return [path for _, path in step_files(checkpoint_folder(run_dir))]


def resume_run(project: Project, index: RunIndex, run: Run, *, device: str | None = None,
               start: bool = True, waiting: Callable[[str], None] | None = None) -> Run:
    """Start a new attempt of a stopped, interrupted or failed run from its latest checkpoint.

    A script run (``[scripts.NAME]``) is restarted instead: a new attempt with the same
    snapshot and params that starts over, or is given the script's newest checkpoint when
    its table declares ``resume`` and ``checkpoints``
    (:func:`workbench.runs.launch_script.restart_script`).

    The attempt uses the run's own code snapshot and config, on the same device and backend
    unless ``device`` says otherwise. When the previous attempt has ended but its supervisor
    is still writing its last words, the resume waits for it (up to
    :data:`~workbench.runs.liveness.SHUTDOWN_WAIT_S`),
    telling ``waiting`` once, after a second.

    Raises:
        WorkbenchError: The run completed, is still running, or has no checkpoint.
    """
    reconcile(index)
    run = index.get_run(run.id) or run
    status = run.status
    if status.is_live and owner_alive(run):
        raise WorkbenchError(f"run {run.id} is still {status}; stop it before resuming")
    run = wait_for_owner(index, run, SHUTDOWN_WAIT_S, waiting)
    status = run.status  # as the previous supervisor left it
    if owner_alive(run):
        if status.is_live:  # resumed meanwhile, from elsewhere
            raise WorkbenchError(f"run {run.id} is still {status}; stop it before resuming")
        raise WorkbenchError(f"run {run.id}'s previous attempt is still shutting down after "
                             f"{SHUTDOWN_WAIT_S:g} s (supervisor pid {run.supervisor_pid}); try again "
                             f"when it has exited")
    if trainer_alive(run.run_dir):
        raise WorkbenchError(f"a training process still trains run {run.id} (its supervisor is gone); "
                             f"stop it first (workbench stop {run.id}), then resume")
    if status is RunStatus.COMPLETED:
        raise WorkbenchError(f"run {run.id} completed; nothing to resume "
                             f"(to train further, fork it: workbench fork {run.id} -s epochs=N)")
    if not status.is_resumable:
        raise WorkbenchError(f"run {run.id} is {status}; only stopped, interrupted or failed runs resume")
    run_dir = Path(run.run_dir or run_dir_of(project, run.id))
    spec = read_spec(run_dir)
    if spec.kind == "script":  # restarted (or given its own latest checkpoint): launch_script
        from workbench.runs.launch_script import restart_script

        return restart_script(project, index, run, spec, status, start=start)
    # A fork that ended before its own first checkpoint starts again from its parent's.
    fork_start = bool(spec.resume_from) and Path(spec.resume_from).is_file()
    if not step_checkpoints(run_dir) and not fork_start:
        raise WorkbenchError(f"run {run.id} has no checkpoint to resume from (it ended before its "
                             f"first one); launch it again instead")
    from workbench.runs.cluster_nodes import NODES_FILE

    if (run_dir / NODES_FILE).is_file():
        raise WorkbenchError(f"run {run.id} trained across machines (--nnodes): resuming it is not built (the "
                             "other machines' ranks have no checkpoint to continue from); launch a new run")
    from workbench.runs.cluster_launch import is_cluster_run

    if is_cluster_run(run_dir):  # a new Slurm job (workbench.runs.cluster_resume)
        from workbench.runs.cluster_resume import resume_cluster

        return resume_cluster(project, index, run, spec, status, device=device, start=start)
    if device is not None and device != spec.device:
        from workbench.project.settings import normalize_device
        from workbench.runs.probe import check_device, probe_devices

        try:
            device = normalize_device(device)
        except ValueError as exc:
            raise WorkbenchError(f"bad --device: {exc}") from None
        check_device(device, spec.backend, spec.nproc, probe_devices(project.state_dir))
        spec.device = device
        write_spec(run_dir, spec)
    attempt = (run.attempt or 1) + 1
    index.update_run(run.id, status=RunStatus.QUEUED, attempt=attempt, ended_at=None, exit_code=None,
                     signal=None, error=None, traceback=None, device=spec.device, heartbeat_at=time.time(),
                     stop_requested_at=None, stop_mode=None, stop_reason=None, status_reason=None)
    index.add_event(run.id, "resumed", f"attempt {attempt} (after {status})",
                    {"attempt": attempt, "previous_status": status.value, "device": spec.device})
    run = index.get_run(run.id) or run
    if start:
        start_supervisor(project, index, run)
    return index.get_run(run.id) or run


def fork_run(project: Project, index: RunIndex, run: Run, *, overrides: Sequence[str] = (),
             checkpoint: str | None = None, name: str | None = None, code: str = "snapshot",
             device: str | None = None, precision: str | None = None, tags: Sequence[str] | None = None,
             probe: dict[str, Any] | None = None, start: bool = True) -> Run:
    """A new run that starts from one of ``run``'s checkpoints, with changed config.

    By default the fork takes the parent's code snapshot (the same code); ``code="worktree"``
    takes a fresh snapshot of the working tree instead, as a launch does (the checkpoint must
    still load into the model that code builds). It applies ``overrides`` to the parent's
    config, copies the chosen checkpoint (default: the newest) into its own folder, and
    continues training from it: weights, optimiser moments and position come from the
    checkpoint; the new config's hyperparameters (e.g. ``lr``) take effect.

    Args:
        device: Train on this device instead of the parent's (checked as a launch is).
        precision: Train with this precision instead of the parent's.
        tags: The fork's tags (default: the parent's).
        probe: The device probe's answer (default: the cached probe), for ``device``/``precision``.

    Raises:
        WorkbenchError: No such checkpoint, a bad override, device or precision, or a bad ``code``.
    """
    from workbench.project import discover, resolve_config
    from workbench.runs.names import check_run_name, friendly_name

    if code not in FORK_CODE:
        raise WorkbenchError(f"bad --code {code!r}: use snapshot (the parent's code) or worktree "
                             "(the working tree now)")

    parent_dir = Path(run.run_dir or run_dir_of(project, run.id))
    checkpoints = step_checkpoints(parent_dir)
    best = best_file(checkpoint_folder(parent_dir))
    if checkpoint is None:
        if not checkpoints:
            raise WorkbenchError(f"run {run.id} has no checkpoint to fork from")
        source = checkpoints[0]
    else:
        candidates = {p.name: p for p in checkpoints}
        candidates.update({p.stem: p for p in checkpoints})
        if best.is_file():
            candidates.update({"best": best, best.name: best})
        if checkpoint.isdigit():
            candidates.update({str(step_of(p.name)): p for p in checkpoints})
        if checkpoint not in candidates:
            names = ", ".join(sorted({p.stem for p in checkpoints} | ({"best"} if best.is_file() else set())))
            raise WorkbenchError(f"run {run.id} has no checkpoint {checkpoint!r}; it has: {names or 'none'}")
        source = candidates[checkpoint]
    spec = read_spec(parent_dir)
    task = discover(project).get(spec.task)
    fields = [f for f in task.config]
    base = [f"{k}={toml_literal(v)}" for k, v in flatten_config(spec.config).items() if v is not None]
    config = resolve_config(fields, overrides=[*base, *overrides], task_name=spec.task)
    new_device, new_precision = _fork_placement(project, spec, device, precision, probe)
    taken = index.run_names()
    if (name or "").strip():
        name = name.strip()
        check_run_name(name, taken, index.run_ids())
    else:
        name = friendly_name(len(taken) + 1, taken)
    run_id = new_run_id()
    run_dir = run_dir_of(project, run_id)
    snap = None
    try:
        with launch_lock(run_dir):  # gc leaves the folder alone until the row exists
            _copy_fork(source, parent_dir, run_dir, copy_code=code == "snapshot")
            changes: dict[str, Any] = {}
            if code == "worktree":  # a fresh snapshot, as a launch takes; the task as it is now
                snap = _snapshot_worktree(project, run_id, run_dir)
                changes = {"snapshot": snap.commit, "task_file": task.file, "task_module": task.module}
            start_file = checkpoint_folder(run_dir) / FORK_START_FILE
            new_spec = type(spec)(**{**asdict(spec), **changes, "id": run_id, "config": config, "name": name,
                                     "device": new_device, "precision": new_precision,
                                     "tags": list(spec.tags if tags is None else tags),
                                     "code_dir": str(run_dir / "code"), "resume_from": str(start_file)})
            write_spec(run_dir, new_spec)
            new = _create_fork_row(index, run, new_spec, run_dir, source.name, project, snap)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        if snap is not None:
            from workbench.snapshot import delete_ref

            delete_ref(project.root, run_id, state_dir=project.state_dir)
        raise
    changed = [o for o in overrides]
    where = f" on the working tree (snapshot {snap.commit[:8]})" if snap is not None else ""
    index.add_event(run_id, "launched", f"forked from {run.id} at {source.name}{where}"
                    + (f" with {' '.join(changed)}" if changed else ""),
                    {"parent": run.id, "checkpoint": source.name, "overrides": changed, "code": code,
                     **({"snapshot": snap.commit} if snap is not None else {})})
    if start:
        start_supervisor(project, index, new)
    return index.get_run(run_id) or new


def _fork_placement(project: Project, spec: RunSpec, device: str | None, precision: str | None,
                    probe: dict[str, Any] | None) -> tuple[str, str]:
    """The fork's device and precision: the parent's, or the ones asked for, checked as a launch is."""
    if device is None and precision is None:
        return spec.device, spec.precision
    from workbench.project.settings import normalize_device, normalize_precision
    from workbench.runs.probe import check_resources, probe_devices

    try:
        new_device = normalize_device(device) if device is not None else spec.device
    except (ValueError, TypeError) as exc:
        raise WorkbenchError(f"bad --device: {exc}") from None
    try:
        new_precision = normalize_precision(precision) if precision is not None else spec.precision
    except (ValueError, TypeError) as exc:
        raise WorkbenchError(f"bad --precision: {exc}") from None
    check_resources(new_device, spec.backend, spec.nproc, new_precision, probe or probe_devices(project.state_dir))
    return new_device, new_precision


def _snapshot_worktree(project: Project, run_id: str, run_dir: Path) -> Any:
    """Snapshot the working tree for a fork (as a launch does) and materialise it in ``code/``."""
    from workbench.snapshot import materialise, take_snapshot

    snap = take_snapshot(project.root, run_id, state_dir=project.state_dir,
                         max_file_bytes=project.snapshot.max_file_bytes, exclude=project.snapshot.exclude)
    materialise(snap, snap.git_dir, run_dir / "code")
    return snap


def _copy_fork(source: Path, parent_dir: Path, run_dir: Path, copy_code: bool = True) -> None:
    checkpoint_folder(run_dir).mkdir(parents=True, exist_ok=True)
    (run_dir / "artifacts").mkdir(exist_ok=True)
    shutil.copy2(source, checkpoint_folder(run_dir) / FORK_START_FILE)
    if copy_code:
        shutil.copytree(parent_dir / "code", run_dir / "code", symlinks=True)


def _create_fork_row(index: RunIndex, parent: Run, spec: RunSpec, run_dir: Path, checkpoint: str,
                     project: Project, snap: Any = None) -> Run:
    if snap is not None:  # the working tree's snapshot: its own git facts
        from workbench.runs._launching import _code_dirty

        git = {"git_head": snap.head, "git_branch": snap.branch, "git_dirty": _code_dirty(project, snap),
               "snapshot_commit": snap.commit}
    else:
        git = {"git_head": parent.git_head, "git_branch": parent.git_branch, "git_dirty": parent.git_dirty,
               "snapshot_commit": parent.snapshot_commit}
    return index.create_run(
        id=spec.id, name=spec.name, task=spec.task, status=RunStatus.QUEUED, device=spec.device,
        backend=spec.backend, nproc=spec.nproc, precision=spec.precision, config=spec.config,
        tags=list(spec.tags), profile=spec.profile or None, run_dir=str(run_dir), **git,
        parent_id=parent.id, parent_checkpoint=checkpoint,
    )


def _deterministic(key: str) -> bool:
    return not key.endswith(NONDETERMINISTIC_SUFFIXES) and not is_system_key(key)


def compare_replay(index: RunIndex, run_id: str, attempt: int) -> dict[str, Any] | None:
    """Compare the points ``attempt`` logged again with those set aside from earlier attempts.

    Only points the new attempt has replayed are compared (a resumed attempt that is stopped
    again compares what it got to). Timing metrics (``*_per_s``) are left out.

    Returns:
        ``{"matched": N, "compared": M, "first_divergence": {...} | None}``, or None when
        nothing was set aside for this run.
    """
    aside = [p for p in index.aside_points(run_id) if p["attempt"] < attempt and _deterministic(p["key"])]
    if not aside:
        return None
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for point in aside:  # sorted by key, attempt, step: the last one per (key, step) wins
        latest[(point["key"], point["step"])] = point
    # Only what this attempt logged again counts (a point at the checkpoint's step that it
    # did not log again is still the earlier attempt's, and trivially equal).
    current = index.attempt_points(run_id, attempt)
    compared = matched = 0
    first: dict[str, Any] | None = None
    for (key, step), old in sorted(latest.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if (key, step) not in current:
            continue
        compared += 1
        now, before = _number(current[(key, step)]), _number(old["value"])
        if now == before or (now != now and before != before):  # NaN replayed as NaN matches
            matched += 1
        elif first is None:
            first = {"key": key, "step": step, "before": before, "replayed": now}
    return {"matched": matched, "compared": compared, "first_divergence": first}


def replay_summary(result: dict[str, Any] | None) -> str:
    """One line for ``workbench show``: ``replay matched 120/120 points`` or where it diverged."""
    if not result:
        return ""
    if result["compared"] == 0:
        return "replay: nothing replayed to compare (it resumed at the last step it had logged)"
    text = f"replay matched {result['matched']}/{result['compared']} points"
    first = result.get("first_divergence")
    if first:
        text += (f"; first diverged at step {first['step']} ({first['key']}: "
                 f"{_number(first['before']):.6g} before, {_number(first['replayed']):.6g} replayed)")
    return text


def _number(value: Any) -> float:
    """A stored point's value: SQLite keeps a NaN as NULL, which reads back as None."""
    return float("nan") if value is None else float(value)
