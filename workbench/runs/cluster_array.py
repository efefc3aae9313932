"""A grid or random sweep on a Slurm cluster: one job array (``workbench sweep ... --on NAME``).

:func:`workbench.runs.sweep.start_sweep` hands a sweep whose request names a cluster to
:func:`start_array`. Every trial is created as an ordinary cluster run — the whole launch
check, its own folder, its own ref at the sweep's shared snapshot, ``cluster.json``,
``attempts/1/job.sh`` and ``context.json`` — without a job of its own. Then one

    sbatch --array=0-(N-1)%PARALLEL .workbench/sweeps/<id>/array-<n>.sh

is submitted. The array's script only picks its task's trial: task ``i`` ``exec``s trial
``i``'s ``job.sh`` (so the trainer is still the batch step and gets Slurm's signals), and
``--output`` names ``array-<n>/<i>.log``, a link to trial ``i``'s ``output.log``. Each
trial records its job as ``JOBID_i`` (``cluster.json``); ``squeue``, ``scontrol show job``
and ``scancel`` take that id as it is, so from there on each trial is a cluster run like
any other: one watcher per run (its owner: DESIGN.md, "Who owns a run"), stop, resume (a
new single job for that run: ``workbench.runs.cluster_resume``) and requeue as documented
in docs/clusters.md. A refused ``sbatch`` removes everything the sweep wrote: runs, folders,
refs, the sweep's row and folder.

``%PARALLEL`` is Slurm's own limit (``ArrayTaskThrottle``): the array's waiting tasks show
``JobArrayTaskLimit`` as their pending reason.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.store import Run, RunIndex

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.runs.sweep import SweepPlan
    from workbench.store._sweeps import Sweep

__all__ = ["array_script", "check_array_size", "resume_array", "start_array"]


def check_array_size(count: int, cluster: str) -> None:
    """Refuse an array of ``count`` tasks that the cluster's ``MaxArraySize`` does not allow
    (indexes run ``0 .. count-1`` and must be below it). Unknown: left to ``sbatch``.

    Raises:
        WorkbenchError: One line naming the limit.
    """
    from workbench.runs.slurm import max_array_size

    limit = max_array_size()
    if limit is not None and count > limit:
        raise WorkbenchError(f"this sweep makes {count:,} runs: one job array on cluster {cluster} holds at most "
                             f"{limit:,} (MaxArraySize in its slurm.conf); split the sweep")


def array_script(sweep_id: str, scripts: list[Path]) -> str:
    """The array's batch script: task ``i`` runs trial ``i``'s own ``job.sh``."""
    lines = ["#!/bin/bash", f"# Written by workbench: sweep {sweep_id}, one array task per trial.",
             'case "${SLURM_ARRAY_TASK_ID:-}" in']
    lines += [f"  {i}) exec {shlex.quote(str(script))} ;;" for i, script in enumerate(scripts)]
    lines += ['  *) echo "workbench: no trial for array task ${SLURM_ARRAY_TASK_ID:-?}" >&2; exit 2 ;;', "esac"]
    return "\n".join(lines) + "\n"


def _array_options(options: list[str], sweep: Sweep, links: Path, count: int, parallel: int | None) -> list[str]:
    """The first trial's sbatch options made the array's: its name, its output, ``--array``."""
    out = [o for o in options if not o.startswith(("--job-name=", "--output="))]
    label = sweep.name or sweep.task
    limit = f"%{parallel}" if parallel else ""
    return [f"--job-name=wb-{label}-{sweep.id}"[:120], f"--output={links / '%a.log'}",
            f"--array=0-{count - 1}{limit}", *out]


def _submit_array(project: Project, sweep: Sweep, scripts: list[Path], run_dirs: list[Path], options: list[str],
                  parallel: int | None) -> str:
    """Write ``array-<n>.sh`` and its output links in the sweep's folder; submit it. Returns the job id."""
    from workbench.runs.slurm import submit
    from workbench.runs.sweep_controller import sweep_dir

    folder = sweep_dir(project, sweep.id)
    folder.mkdir(parents=True, exist_ok=True)
    n = 1 + len(list(folder.glob("array-*.sh")))
    links = folder / f"array-{n}"
    links.mkdir(parents=True, exist_ok=True)
    for i, run_dir in enumerate(run_dirs):  # Slurm appends task i's output to trial i's output.log
        (links / f"{i}.log").symlink_to(run_dir / "output.log")
    script = folder / f"array-{n}.sh"
    script.write_text(array_script(sweep.id, scripts), encoding="utf-8")
    script.chmod(0o755)
    try:
        return submit(str(script), _array_options(options, sweep, links, len(scripts), parallel),
                      cwd=str(project.root))
    except BaseException:
        script.unlink(missing_ok=True)
        shutil.rmtree(links, ignore_errors=True)
        raise


def start_array(project: Project, plan: SweepPlan, index: RunIndex, sweep: Sweep, snapshot: Any) -> list[Run]:
    """Create every trial as a cluster run, submit them as one job array, start their watchers.

    Returns:
        The trials, in array-task order (``queued``; ``slurm job JOBID_i: submitted``).

    Raises:
        WorkbenchError: A launch check or ``sbatch`` refused (one line); nothing is left.
    """
    from workbench.runs.cluster_launch import record_submission, write_attempt
    from workbench.runs.launch import start_supervisor
    from workbench.runs.spec import read_spec
    from workbench.runs.sweep_controller import sweep_dir

    runs: list[Run] = []
    try:
        for trial, name in zip(plan.trials, plan.names):
            runs.append(_create_trial(project, index, plan, sweep, trial, name, snapshot))
        written = [write_attempt(project, index, run, read_spec(Path(run.run_dir or "")), 1) for run in runs]
        job = _submit_array(project, sweep, [path for path, _, _ in written], [Path(r.run_dir or "") for r in runs],
                            written[0][1], plan.request.parallel)
    except BaseException:
        _undo(project, index, sweep, runs, sweep_dir(project, sweep.id))
        raise
    cluster = written[0][2]
    index.update_sweep(sweep.id, spec={**sweep.spec, "array_job": job})
    for i, run in enumerate(runs):
        record_submission(index, run, 1, f"{job}_{i}", cluster, f", task {i} of job array {job}")
        start_supervisor(project, index, run)  # its watcher: python -m workbench.runs.supervisor
    return [index.get_run(run.id) or run for run in runs]


def resume_array(project: Project, index: RunIndex, sweep: Sweep, runs: list[Run]) -> list[tuple[Run, str, str]]:
    """Continue a cluster sweep's ``runs`` (stopped, interrupted or failed) as ONE new job
    array with the sweep's ``parallel`` as its limit: a trial that started resumes from its
    latest checkpoint as attempt ``n + 1``; one whose job was cancelled before it started
    runs its attempt again from the start. A trial that cannot continue is refused alone.

    Returns:
        ``(run, action, message)`` per trial: ``resumed``, ``requeued`` or ``refused``.

    Raises:
        WorkbenchError: sbatch refused the array (one line; no trial changed).
    """
    from workbench.runs.cluster_launch import write_attempt
    from workbench.runs.cluster_resume import mark_restarted, mark_resumed, refuse_if_live, set_aside_outcome
    from workbench.runs.spec import read_spec

    actions: list[tuple[Run, str, str]] = []
    chosen: list[tuple[Run, int, tuple[Path, list[str], str]]] = []
    for run in runs:
        try:
            run = _settled(index, run)
            refuse_if_live(run)
            if run.started_at is not None:
                _check_checkpoint(run)
            attempt = (run.attempt or 1) + (run.started_at is not None)
            chosen.append((run, attempt, write_attempt(project, index, run, read_spec(Path(run.run_dir or "")),
                                                       attempt)))
        except WorkbenchError as exc:
            actions.append((run, "refused", str(exc)))
    if not chosen:
        return actions
    restores = [set_aside_outcome(run) for run, _, _ in chosen if run.started_at is None]
    try:
        job = _submit_array(project, sweep, [w[0] for _, _, w in chosen], [Path(r.run_dir or "") for r, _, _ in chosen],
                            chosen[0][2][1], sweep.parallel)
    except BaseException:
        for restore in restores:
            restore()
        raise
    for i, (run, attempt, (_, _, cluster)) in enumerate(chosen):
        note = f", task {i} of job array {job}"
        if run.started_at is None:
            actions.append((mark_restarted(project, index, run, f"{job}_{i}", cluster, note=note), "requeued",
                            "its job never started: submitted again"))
        else:
            actions.append((mark_resumed(project, index, run, run.status, attempt, f"{job}_{i}", cluster, note=note),
                            "resumed", f"attempt {attempt}"))
    return actions


def _settled(index: RunIndex, run: Run, wait: float = 60.0) -> Run:
    """The run once its previous watcher has written its last words (up to ``wait`` seconds).

    Raises:
        WorkbenchError: Its watcher still runs.
    """
    from workbench.runs.liveness import owner_alive, wait_for_owner

    run = wait_for_owner(index, run, wait)
    if owner_alive(run):
        raise WorkbenchError(f"run {run.id}'s watcher (pid {run.supervisor_pid}) is still finishing; try again")
    if not run.status.is_resumable:
        raise WorkbenchError(f"run {run.id} is {run.status}; only stopped, interrupted or failed runs resume")
    return run


def _check_checkpoint(run: Run) -> None:
    from workbench.runs.resume import step_checkpoints

    if not step_checkpoints(Path(run.run_dir or "")):
        raise WorkbenchError(f"run {run.id} has no checkpoint to resume from (it ended before its first "
                             "checkpoint); launch a new run")


def _create_trial(project: Project, index: RunIndex, plan: SweepPlan, sweep: Sweep, trial: Any,
                  name: str | None, snapshot: Any) -> Run:
    """One trial as a run of the sweep on its snapshot, prepared as ``launch`` does, not submitted."""
    from workbench.runs.launch import LaunchRequest, _create, prepare
    from workbench.runs.spec import run_dir_of
    from workbench.runs.sweep_spec import trial_overrides
    from workbench.store import new_run_id

    request = plan.request
    launch = LaunchRequest(request.task or sweep.task, [*request.fixed, *trial_overrides(trial)], request.profile,
                           request.device, name=name, tags=list(request.tags), on=request.on)
    prepared = prepare(project, launch, index=index)
    run_id = new_run_id()
    run_dir = run_dir_of(project, run_id)
    try:
        row = _create(project, index, prepared, run_id, run_dir, pick_name=not name, snapshot=snapshot)
    except BaseException:
        index.delete_run(run_id)
        shutil.rmtree(run_dir, ignore_errors=True)
        _drop_ref(project, run_id)
        raise
    index.update_run(run_id, sweep_id=sweep.id)
    return index.get_run(run_id) or row


def _drop_ref(project: Project, run_id: str) -> None:
    from workbench.runs._launching import _drop_ref as drop

    drop(project, run_id)


def _undo(project: Project, index: RunIndex, sweep: Sweep, runs: list[Run], folder: Path) -> None:
    """Remove what a refused array left: its runs (rows, folders, refs), the sweep's row and folder."""
    for run in runs:
        index.delete_run(run.id)
        if run.run_dir:
            shutil.rmtree(run.run_dir, ignore_errors=True)
        _drop_ref(project, run.id)
    index.delete_sweep(sweep.id)
    shutil.rmtree(folder, ignore_errors=True)
