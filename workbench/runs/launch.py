"""Launching a run: check everything, snapshot the code, write the spec, start the supervisor.

Everything that can be wrong with a launch (an unknown task, a bad override, a device
this machine lacks, a taken name) is found by :func:`prepare`, before anything is
written: a refused launch leaves the index, the run folders and the git repository as
they were.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.runs.liveness import process_create_time
from workbench.runs.names import check_run_name
from workbench.runs.locks import launch_lock
from workbench.runs._launching import (
    STOP_SIGNALS,
    LaunchRequest,
    PreparedLaunch,
    _code_dirty,
    _create_row,
    _drop_ref,
    _env,
    _excluded,
    _fingerprint_data,
)
from workbench.runs.spec import STEPS, RunSpec, check_round_trip, read_spec, run_dir_of, write_spec
from workbench.store import Run, RunIndex, RunStatus, new_run_id

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.snapshot import Snapshot

__all__ = ["STEPS", "STOP_SIGNALS", "LaunchRequest", "PreparedLaunch", "check_steps", "launch", "prepare", "start_supervisor"]

BACKENDS = ("single", "ddp")

def prepare(project: Project, request: LaunchRequest, *, index: RunIndex | None = None,
            probe: dict[str, Any] | None = None) -> PreparedLaunch:
    """Check a launch request without writing anything.

    Raises:
        WorkbenchError: Unknown task, bad override or profile, unknown device, backend
            or precision, a taken name; one line that says what would be right.
    """
    from workbench.project import discover, find_profile, resolve_config
    from workbench.project.settings import normalize_backend, normalize_device, normalize_precision
    from workbench.runs.probe import check_resources, probe_devices

    if project.script(request.task) is not None:  # a [scripts.NAME] table: workbench.runs.launch_script
        from workbench.runs.launch_script import prepare_script

        return prepare_script(project, request, index=index, probe=probe)
    task = discover(project).get(request.task, launchable=True)
    profile_path = find_profile(project.root, request.profile) if request.profile else None
    config = resolve_config(task.config, profile=profile_path, overrides=list(request.overrides),
                            task_name=task.name)
    defaults = project.defaults
    device = _checked(normalize_device, request.device, defaults.device, "device")
    backend = _checked(normalize_backend, request.backend, defaults.backend, "backend")
    precision = _checked(normalize_precision, request.precision, defaults.precision, "precision")
    nproc = request.nproc if request.nproc is not None else (defaults.nproc if backend == "ddp" else 1)
    placement = None
    if request.on:  # judged against the cluster's declared resources, not this machine's devices
        from workbench.runs.cluster_launch import check_placement

        placement, device, nproc = check_placement(project, request.on, request.nodes, request.gpus_per_node,
                                                   device, backend, request.nproc, precision)
    elif request.nodes is not None or request.gpus_per_node is not None:
        raise WorkbenchError("--nodes and --gpus-per-node go with --on CLUSTER (a [clusters.NAME] table)")
    if nproc < 1:
        raise WorkbenchError(f"--nproc must be 1 or more, got {nproc}")
    if backend == "single" and nproc != 1:
        raise WorkbenchError(f"--nproc {nproc} needs --backend ddp (a single process is one process)")
    name = (request.name or "").strip() or None
    taken = index.run_names() if index is not None else set()
    if name is not None:
        check_run_name(name, taken, index.run_ids() if index is not None else ())
    elif index is not None:
        from workbench.runs.names import friendly_name

        name = friendly_name(len(taken) + 1, taken)
    if placement is not None:
        probe, warnings = {"default": device}, []
    else:
        if probe is None:
            probe = probe_devices(project.state_dir)
        warnings = check_resources(device, backend, nproc, precision, probe)
    profile = str(profile_path.relative_to(project.root)) if profile_path and \
        profile_path.is_relative_to(project.root) else str(profile_path or "")
    deterministic = request.deterministic if request.deterministic is not None else defaults.deterministic
    if deterministic is None:  # the docs promise bit-identical runs on the CPU
        deterministic = (probe.get("default", "cpu") if device == "auto" else device) == "cpu"
    steps = check_steps(request.steps or getattr(task, "steps", ()) or ("fit",), task.name)
    prepared = PreparedLaunch(task, config, device, backend, nproc, precision, name,
                              [t for t in request.tags if t], profile, warnings, bool(deterministic), steps,
                              placement)
    # The spec must read back as written: refuse now, before a folder or a ref exists.
    check_round_trip(_spec(project, prepared, "0" * 12, Path(project.runs_dir) / ("0" * 12), ""))
    return prepared


def check_steps(steps: Sequence[str], task: str = "") -> list[str]:
    """A pipeline's steps, checked: known names, each once, and ``fit`` first if present.

    A pipeline without ``fit`` would test a freshly built model: refused (``workbench test
    RUN`` tests a run's checkpoint).

    Raises:
        WorkbenchError: One line saying what is wrong and what would be right.
    """
    names = [str(step).strip() for step in steps]
    where = f" of {task}" if task else ""
    for name in names:
        if name not in STEPS:
            raise WorkbenchError(f"unknown step {name!r} in the steps{where}; steps are {', '.join(STEPS)}"
                                 " (e.g. --steps fit,test)")
    if len(set(names)) != len(names) or not names:
        raise WorkbenchError(f"the steps{where} must name each step once: {','.join(names) or '(none)'}")
    if "fit" not in names:
        raise WorkbenchError(f"the steps{where} ({','.join(names)}) have no fit: they would test a freshly "
                             "built model; to test a run's checkpoint use: workbench test RUN")
    if names[0] != "fit":
        raise WorkbenchError(f"the steps{where} ({','.join(names)}) must start with fit: a test before it "
                             "would test a freshly built model")
    return names


def _checked(normalize: Any, value: Any, default: Any, what: str) -> Any:
    if value is None:
        return default
    try:
        return normalize(value)
    except (ValueError, TypeError) as exc:
        raise WorkbenchError(f"bad --{what}: {exc}") from None


def launch(project: Project, request: LaunchRequest, *, index: RunIndex | None = None,
           probe: dict[str, Any] | None = None, start: bool = True, snapshot: Snapshot | None = None) -> Run:
    """Launch a run: prepare, snapshot the code, write ``run.toml``, start the supervisor.

    Args:
        project: The project (``workbench.project.Project``).
        request: What to run.
        index: An open ``RunIndex`` (default: the project's).
        probe: The device probe's answer (default: cached probe).
        start: Start the supervisor (tests may start it themselves).
        snapshot: An existing code snapshot to run (a sweep's, taken once at its start):
            the run gets its own ref at that commit instead of a new snapshot. Tasks only.

    Returns:
        The new run (status ``queued``).
    """
    if project.script(request.task) is not None:  # a [scripts.NAME] table: workbench.runs.launch_script
        from workbench.runs.launch_script import launch_script

        if snapshot is not None:
            raise WorkbenchError(f"{request.task} is a script: a shared snapshot is for task runs")
        return launch_script(project, request, index=index, probe=probe, start=start)
    own_index = index is None
    index = index if index is not None else RunIndex(project.index_path)
    try:
        prepared = prepare(project, request, index=index, probe=probe)
        run_id = new_run_id()
        run_dir = run_dir_of(project, run_id)
        try:
            row = _create(project, index, prepared, run_id, run_dir,
                          pick_name=not (request.name or "").strip(), snapshot=snapshot)
            if prepared.placement is not None:  # sbatch may refuse: then nothing is left
                from workbench.runs.cluster_launch import submit_attempt

                submit_attempt(project, index, row, read_spec(run_dir), 1)
        except BaseException:
            if prepared.placement is not None:
                index.delete_run(run_id)
            shutil.rmtree(run_dir, ignore_errors=True)
            _drop_ref(project, run_id)
            raise
        if start:
            start_supervisor(project, index, row)
        return index.get_run(run_id) or row
    finally:
        if own_index:
            index.close()


def _spec(project: Project, prepared: PreparedLaunch, run_id: str, run_dir: Path, snapshot: str) -> RunSpec:
    task = prepared.task
    return RunSpec(
        id=run_id, task=task.name, task_file=task.file, task_module=task.module,
        config=prepared.config, device=prepared.device, backend=prepared.backend,
        nproc=prepared.nproc, precision=prepared.precision, project_root=str(project.root),
        index=str(project.index_path), code_dir=str(run_dir / "code"), name=prepared.name or "",
        tags=list(prepared.tags), profile=prepared.profile, snapshot=snapshot,
        max_log_bytes=project.max_log_bytes, deterministic=prepared.deterministic,
        steps=list(prepared.steps), **({"sink": "journal"} if prepared.placement is not None else {}),
    )


def _create(project: Project, index: RunIndex, prepared: PreparedLaunch, run_id: str, run_dir: Path,
            pick_name: bool = False, snapshot: Snapshot | None = None) -> Run:
    from workbench.snapshot import add_ref, materialise, take_snapshot

    run_dir.mkdir(parents=True)
    # gc and `index rebuild` leave a folder whose launch lock is held: until its row exists.
    with launch_lock(run_dir):
        data = _fingerprint_data(project, run_dir)
        if snapshot is not None:  # a sweep's, shared: this run's own ref at its commit
            snap = add_ref(project.root, snapshot, run_id, state_dir=project.state_dir)
        else:
            snap = take_snapshot(project.root, run_id, state_dir=project.state_dir,
                                 max_file_bytes=project.snapshot.max_file_bytes,
                                 exclude=project.snapshot.exclude)
        code_dir = run_dir / "code"
        materialise(snap, snap.git_dir, code_dir)
        task = prepared.task
        write_spec(run_dir, _spec(project, prepared, run_id, run_dir, snap.commit))
        if prepared.placement is not None:
            from workbench.runs.cluster_launch import write_placement

            write_placement(run_dir, prepared.placement)
        (run_dir / "artifacts").mkdir()
        row = _create_row(
            index, pick_name,
            id=run_id, name=prepared.name, task=task.name, status=RunStatus.QUEUED, device=prepared.device,
            backend=prepared.backend, nproc=prepared.nproc, precision=prepared.precision,
            config=prepared.config, tags=list(prepared.tags), profile=prepared.profile or None,
            run_dir=str(run_dir), git_head=snap.head, git_branch=snap.branch,
            git_dirty=_code_dirty(project, snap), snapshot_commit=snap.commit,
        )
    for warning in [*prepared.warnings, *(data.warnings if data else ())]:
        index.add_event(run_id, "warning", warning)
    if data is not None:
        index.add_event(run_id, "data", data.summary, data.event_data())
    excluded = [f"{path} ({why})" for path, why in _excluded(project, snap)]
    where = f" on cluster {prepared.placement.name}" if prepared.placement is not None else ""
    index.add_event(run_id, "launched", f"{task.name} on {prepared.device}/{prepared.backend}{where}",
                    {"snapshot": snap.commit, "excluded": excluded[:200]})
    if excluded:
        index.add_event(run_id, "snapshot-excluded",
                        f"{len(excluded)} file(s) left out of the code snapshot",
                        {"files": excluded[:200]})
    return row


def start_supervisor(project: Project, index: RunIndex, run: Run) -> int:
    """Start the run's supervisor in its own session; record its pid. Returns the pid."""
    run_dir = Path(run.run_dir or run_dir_of(project, run.id))
    log = open(run_dir / "supervisor.log", "ab")
    # The supervisor starts with stop signals blocked and unblocks them once its handlers
    # are in place: a stop sent while it is still starting waits for it, not kills it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.runs.supervisor", str(run_dir),
             "--index", str(project.index_path), "--run-id", run.id],
            cwd=str(project.root), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=_env(),
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        log.close()
    index.update_run(run.id, supervisor_pid=proc.pid,
                     supervisor_create_time=process_create_time(proc.pid))
    return proc.pid


