"""Sweeps: many runs of one task over a grid or a random search, one snapshot, one queue.

:func:`plan_sweep` checks everything a sweep would do — the task, the launch (device,
backend, precision), every parameter's items against their fields (naming the bad item),
every trial's whole config, the run count and names — and writes nothing.
:func:`start_sweep` then takes the code snapshot once, records the sweep, and queues each
trial as a normal run that carries the sweep id and its own ref at the shared commit.
:func:`stop_sweep` and :func:`resume_sweep` act on every trial (see docs/sweeps.md).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.runs.sweep_spec import (
    Distribution,
    Item,
    Param,
    SweepSpecError,
    check_unique,
    grid_size,
    grid_trials,
    labelled_items,
    param_from_toml,
    parse_param,
    random_trials,
    toml_text,
    trial_overrides,
)
from workbench.store import Run, RunIndex, RunStatus

if TYPE_CHECKING:
    from workbench.project import Project, TaskInfo
    from workbench.runs._launching import PreparedLaunch
    from workbench.store._sweeps import Sweep

__all__ = [
    "MAX_RUNS",
    "SweepPlan",
    "SweepRequest",
    "load_sweep_file",
    "plan_sweep",
    "resume_sweep",
    "start_sweep",
    "stop_sweep",
]

#: A sweep making more runs than this needs ``--yes``, unless ``[sweep] max_runs`` in
#: workbench.toml says otherwise (:attr:`workbench.project.Project.sweep_max_runs`).
MAX_RUNS = 1000

_KINDS = ("grid", "random", "optuna")
_FILE_KEYS = ("task", "name", "parallel", "metric", "direction", "seed", "trials", "prune", "device",
              "profile", "tags", "grid", "random", "optuna", "set", "on")


@dataclass
class SweepRequest:
    """What the user asked for (CLI flags, a sweep file, or both merged).

    Attributes:
        task: The task every trial runs.
        params: ``-g KEY=SPEC`` texts (value lists or distributions).
        fixed: ``-s KEY=VALUE`` overrides every trial shares.
        random: A random search of this many trials (None: a grid).
        optuna: An Optuna study of this many trials.
        seed: The random search's seed (None: one is drawn and recorded).
        parallel: At most this many trials at once (None: only the project's limit).
        metric: The metric trials are ranked by.
        direction: ``min`` or ``max`` (default from the metric's name).
        prune: Optuna's pruner (``median`` or ``hyperband``), or None.
        name: A unique name for the sweep; its runs are named ``NAME-1``, ``NAME-2``, …
        yes: Allow more runs than the project's limit (``[sweep] max_runs``, default :data:`MAX_RUNS`).
        device: The device of every trial.
        profile: A config profile for every trial.
        tags: Tags of every trial.
        file_params: Parameters from a sweep file (CLI ``params`` with the same key win).
        on: A ``[clusters.NAME]`` to run on: a grid or random sweep is one Slurm job array
            (``workbench.runs.cluster_array``); None: this machine's queue.
    """

    task: str | None = None
    params: Sequence[str] = ()
    fixed: Sequence[str] = ()
    random: int | None = None
    optuna: int | None = None
    seed: int | None = None
    parallel: int | None = None
    metric: str | None = None
    direction: str | None = None
    prune: str | None = None
    name: str | None = None
    yes: bool = False
    device: str | None = None
    profile: str | None = None
    tags: Sequence[str] = ()
    file_params: Sequence[Param] = ()
    on: str | None = None


@dataclass
class SweepPlan:
    """A checked sweep: its kind, parameters and trials, and the first trial's launch."""

    request: SweepRequest
    kind: str
    params: list[Param]
    trials: list[dict[str, Item]]
    seed: int | None
    prepared: PreparedLaunch
    names: list[str | None] = field(default_factory=list)
    direction: str = "min"

    @property
    def varied(self) -> list[str]:
        """The keys that vary (more than one value or a distribution)."""
        return [p.key for p in self.params if isinstance(p, Distribution) or p.size > 1]

    def spec(self) -> dict[str, Any]:
        """What the sweeps row records in ``spec``."""
        r = self.request
        return {"params": [p.describe() for p in self.params], "keys": [p.key for p in self.params],
                "varied": self.varied, "fixed": list(r.fixed), "seed": self.seed, "trials": len(self.trials),
                "device": r.device, "profile": r.profile, "tags": list(r.tags), "prune": r.prune, "on": r.on,
                "values": [{k: item.value for k, item in t.items()} for t in self.trials]}


def load_sweep_file(project: Project, where: str | Path) -> SweepRequest:
    """Read a sweep file: ``sweeps/NAME.toml``, a path, or just ``NAME``.

    Raises:
        WorkbenchError: The file is missing or not TOML, a key is unknown, or it holds no
            (or more than one) ``[grid]``, ``[random]`` or ``[optuna]`` table.
    """
    from workbench.project._toml import load_toml_text
    path = Path(where)
    candidates = [path, project.root / path, project.root / "sweeps" / f"{where}.toml"]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise WorkbenchError(f"sweep file {str(where)!r} not found (looked for it as a path and in "
                             f"{project.root / 'sweeps'})")
    try:
        data = load_toml_text(found.read_text(encoding="utf-8"), str(found))
    except (ValueError, OSError) as exc:
        raise WorkbenchError(f"{found}: {exc}") from None
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        raise WorkbenchError(f"{found}: unknown key {', '.join(unknown)}; known: {', '.join(_FILE_KEYS)}")
    tables = [kind for kind in _KINDS if kind in data]
    if len(tables) != 1:
        raise WorkbenchError(f"{found}: give exactly one of [grid], [random] or [optuna] (the parameters "
                             f"that vary); found {', '.join(f'[{t}]' for t in tables) or 'none'}")
    kind = tables[0]
    for key in ("grid", "random", "optuna", "set"):
        if key in data and not isinstance(data[key], dict):
            raise WorkbenchError(f"{found}: {key} must be a table ([{key}])")
    try:
        params = [param_from_toml(key, value) for key, value in data[kind].items()]
    except SweepSpecError as exc:
        raise WorkbenchError(f"{found}: {exc}") from None
    trials = data.get("trials")
    if kind != "grid" and not isinstance(trials, int):
        raise WorkbenchError(f"{found}: a [{kind}] sweep needs trials = N (how many runs)")
    tags = data.get("tags", [])
    return SweepRequest(
        task=data.get("task"), fixed=[f"{k}={toml_text(v)}" for k, v in data.get("set", {}).items()],
        random=trials if kind == "random" else None, optuna=trials if kind == "optuna" else None,
        seed=data.get("seed"), parallel=data.get("parallel"), metric=data.get("metric"),
        direction=data.get("direction"), prune=data.get("prune"), name=data.get("name"),
        device=data.get("device"), profile=data.get("profile"), on=data.get("on"),
        tags=[tags] if isinstance(tags, str) else list(tags), file_params=params)


def merge_requests(base: SweepRequest, cli: SweepRequest) -> SweepRequest:
    """A sweep file's request with the command line's flags on top (given flags win)."""
    merged = replace(base)
    for name in ("task", "random", "optuna", "seed", "parallel", "metric", "direction", "prune", "name",
                 "device", "profile", "on"):
        value = getattr(cli, name)
        if value is not None:
            setattr(merged, name, value)
    if cli.random is not None:
        merged.optuna = None
    if cli.optuna is not None:
        merged.random = None
    merged.params = list(cli.params)
    merged.fixed = [*base.fixed, *cli.fixed]
    merged.tags = [*base.tags, *cli.tags]
    merged.yes = base.yes or cli.yes
    return merged


def _params(request: SweepRequest) -> list[Param]:
    given = [parse_param(text) for text in request.params]
    check_unique(given)
    keys = {p.key for p in given}
    params = [p for p in request.file_params if p.key not in keys] + given
    check_unique(params)
    if not params:
        raise SweepSpecError("a sweep needs at least one parameter that varies: -g KEY=V1,V2,… "
                             "(e.g. -g lr=1e-4,1e-3)")
    return params


def plan_sweep(project: Project, request: SweepRequest, *, index: RunIndex,
               probe: dict[str, Any] | None = None) -> SweepPlan:
    """Check a sweep without writing anything.

    Raises:
        WorkbenchError: One line: a bad parameter or item (named), an unknown key, a bad
            distribution, more runs than ``[sweep] max_runs`` without ``yes``, ``parallel`` < 1,
            a bad launch (device, task, ...), or a taken name.
    """
    from workbench.project import discover
    from workbench.runs.launch import LaunchRequest, prepare

    if not request.task:
        raise WorkbenchError("name the TASK to sweep (workbench sweep TASK -g KEY=V1,V2) or give --file")
    if project.script(request.task) is not None:
        raise WorkbenchError(f"{request.task} is a script: sweeps run tasks (a script's runs are not exactly "
                             "resumable, so a sweep could not promise resume)")
    if request.random is not None and request.optuna is not None:
        raise WorkbenchError("give --random N or --optuna N, not both")
    kind = "optuna" if request.optuna is not None else "random" if request.random is not None else "grid"
    from workbench.runs.sweep_controller import PRUNERS  # names only: Optuna is not imported

    if request.prune is not None and request.prune not in PRUNERS:
        raise WorkbenchError(f"--prune must be {' or '.join(PRUNERS)} (or left out), got {request.prune!r}")
    if request.prune is not None and kind != "optuna":
        raise WorkbenchError("--prune is for --optuna sweeps")
    count = request.optuna if kind == "optuna" else request.random
    if count is not None and count < 1:
        raise WorkbenchError(f"--{kind} needs 1 or more trials, got {count}")
    if request.parallel is not None and request.parallel < 1:
        raise WorkbenchError(f"--parallel must be 1 or more, got {request.parallel}")
    direction = _direction(request)
    params = _params(request)
    size = grid_size(params) if kind == "grid" else int(count or 0)
    limit = getattr(project, "sweep_max_runs", MAX_RUNS)
    if size > limit and not request.yes:
        raise WorkbenchError(f"this sweep makes {size:,} runs, more than {limit:,}: pass --yes to queue them all "
                             "(or raise [sweep] max_runs in workbench.toml)")
    fixed_keys = {text.partition("=")[0].strip() for text in request.fixed}
    both = sorted(fixed_keys & {p.key for p in params})
    if both:
        raise WorkbenchError(f"{both[0]} is both fixed (-s) and swept (-g); give it once")
    seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**31)
    if kind == "grid":
        trials = list(grid_trials(params))
    elif kind == "random":
        trials = random_trials(params, size, seed)
    else:
        trials = []  # asked one by one by the study
    task = discover(project).get(request.task, launchable=True)
    _check_params(project, task, request, params)
    for n, trial in enumerate(trials, 1):
        _check(project, task, request, trial_overrides(trial),
               lambda exc, n=n, trial=trial: f"trial {n} ({', '.join(trial_overrides(trial))}): {exc}")
    names = _run_names(index, request.name, len(trials) if kind != "optuna" else size)
    first = trials[0] if trials else {}
    base = LaunchRequest(request.task, [*request.fixed, *trial_overrides(first)], request.profile,
                         request.device, tags=list(request.tags), on=request.on)
    prepared = prepare(project, base, index=index, probe=probe)  # device, backend, precision, cluster, ...
    if request.on and kind == "optuna":  # trial by trial, later: would Slurm take such a job now?
        from workbench.runs.cluster_launch import check_submission

        check_submission(project, prepared.placement)
    elif request.on:
        from workbench.runs.cluster_array import check_array_size

        check_array_size(len(trials), request.on)
    if kind == "optuna":
        _check_optuna()
    return SweepPlan(request, kind, params, trials, seed if kind != "grid" else None, prepared, names, direction)


def _check_optuna() -> None:
    """Refuse an Optuna sweep where Optuna is not installed (found without importing it)."""
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        raise WorkbenchError("--optuna needs Optuna: pip install 'workbench[sweeps]' (or pip install optuna)")


def _direction(request: SweepRequest) -> str:
    from workbench.runs.present import better_is_higher

    if request.direction is not None:
        if request.direction not in ("min", "max"):
            raise WorkbenchError(f"--direction must be min or max, got {request.direction!r}")
        return request.direction
    return "max" if request.metric and better_is_higher(request.metric) else "min"


def _check(project: Project, task: TaskInfo, request: SweepRequest, overrides: list[str],
           message: Any) -> None:
    """One config checked exactly as a launch checks it (types, ranges, required fields)."""
    from workbench.project import ConfigError, find_profile, resolve_config

    try:
        profile = find_profile(project.root, request.profile) if request.profile else None
        resolve_config(task.config, profile=profile, overrides=[*request.fixed, *overrides], task_name=task.name)
    except ConfigError as exc:
        raise WorkbenchError(message(exc)) from None


def _check_params(project: Project, task: TaskInfo, request: SweepRequest, params: list[Param]) -> None:
    """Each item of each parameter on its own, so a refusal names the bad item."""
    from workbench.configtypes import suggestion

    known = sorted(f.name for f in task.config)
    for param in params:
        if param.key not in known:
            raise WorkbenchError(f"-g {param.key}: unknown config key '{param.key}' for {task.name}; "
                                 f"valid keys: {', '.join(known)}{suggestion(param.key, known)}")
        for label, item in labelled_items(param):
            _check(project, task, request, [f"{param.key}={item.text}"],
                   lambda exc, label=label: f"-g {param.key}: {label} is refused: {exc}")


def _run_names(index: RunIndex, name: str | None, count: int) -> list[str | None]:
    from workbench.runs.names import check_run_name

    if name is None:
        return [None] * count
    name = name.strip()
    if not name or name.isdigit() or not all(c.isalnum() or c in "-_." for c in name):
        raise WorkbenchError(f"bad sweep name {name!r}: use letters, digits, '-', '_' or '.' (not only digits)")
    if any(s.name == name for s in index.list_sweeps()):
        raise WorkbenchError(f"a sweep named {name!r} already exists; pick another --name")
    taken, ids = index.run_names(), index.run_ids()
    names: list[str | None] = []
    for n in range(1, count + 1):
        run_name = f"{name}-{n}"
        check_run_name(run_name, taken, ids)
        names.append(run_name)
    return names


def start_sweep(project: Project, plan: SweepPlan, *, index: RunIndex) -> tuple[Sweep, list[Run]]:
    """Take the code snapshot once, record the sweep, and queue every trial.

    Returns:
        The sweep and its runs (queued).
    """
    from workbench.snapshot import take_snapshot

    request = plan.request
    snapshot = take_snapshot(project.root, None, state_dir=project.state_dir,
                             max_file_bytes=project.snapshot.max_file_bytes, exclude=project.snapshot.exclude)
    spec = {**plan.spec(), "snapshot": snapshot.to_dict()}
    if plan.kind == "optuna":
        spec["trials"] = plan.request.optuna
    sweep = index.create_sweep(name=request.name, task=request.task, kind=plan.kind, spec=spec,
                               parallel=request.parallel, metric=request.metric or (
                                   "val/loss" if plan.kind == "optuna" else None),
                               direction=plan.direction, snapshot_commit=snapshot.commit, status="running")
    if plan.kind == "optuna":  # its controller asks the study for trials and queues them
        from workbench.runs.sweep_controller import start_controller

        start_controller(project, sweep.id)
        return sweep, []
    if request.on:  # one Slurm job array; a refused sbatch leaves nothing
        from workbench.runs.cluster_array import start_array

        return sweep, start_array(project, plan, index, sweep, snapshot)
    runs: list[Run] = []
    for trial, name in zip(plan.trials, plan.names):
        try:
            runs.append(queue_trial(project, index, sweep, request, trial, name, snapshot))
        except WorkbenchError as exc:  # checked already: the index or the disk failed meanwhile
            raise WorkbenchError(f"sweep {sweep.id}: queued {len(runs)} of {len(plan.trials)} trials, then: {exc}; "
                                 f"`workbench sweep stop {sweep.id}` ends it") from None
    return sweep, runs


def queue_trial(project: Project, index: RunIndex, sweep: Sweep, request: SweepRequest,
                trial: dict[str, Item], name: str | None, snapshot: Any) -> Run:
    """Queue one trial as a run of the sweep, on the sweep's snapshot (the queue's launch check
    runs again: the device probe's cached answer, the task file as it is now)."""
    from workbench.runs.launch import LaunchRequest
    from workbench.runs.queue import enqueue

    launch_request = LaunchRequest(request.task or sweep.task, [*request.fixed, *trial_overrides(trial)],
                                   request.profile, request.device, name=name, tags=list(request.tags))
    return enqueue(project, launch_request, index=index, sweep_id=sweep.id, snapshot=snapshot)


@dataclass(frozen=True)
class TrialAction:
    """What stop or resume of a sweep did to one trial."""

    run: Run
    action: str
    message: str = ""


def stop_sweep(project: Project, index: RunIndex, sweep: Sweep, *, reason: str = "user") -> list[TrialAction]:
    """Stop a sweep: waiting trials end ``stopped`` without starting; running ones are asked
    to stop gracefully (a checkpoint, then ``stopped``); ended ones are left as they are."""
    from workbench.runs.control import stop_run
    from workbench.runs.liveness import reconcile

    reconcile(index)
    if (index.get_sweep(sweep.id) or sweep).status != "failed":  # a failed study stays failed
        index.update_sweep(sweep.id, status="stopped")
    actions = []
    for run in index.runs_of_sweep(sweep.id):
        if not run.status.is_live:
            continue
        if run.status is RunStatus.QUEUED and index.cancel_queued(run.id, reason):
            actions.append(TrialAction(index.get_run(run.id) or run, "cancelled", "never started"))
            continue
        try:
            result = stop_run(index, run, reason=reason)
        except WorkbenchError as exc:  # it ended meanwhile
            actions.append(TrialAction(run, "ended", str(exc)))
            continue
        pending = run.status is RunStatus.QUEUED and "PENDING" in (run.status_reason or "")
        actions.append(TrialAction(result.run, "cancelled", "its pending Slurm job is cancelled: it never starts")
                       if pending and result.outcome == "requested" else
                       TrialAction(result.run, result.outcome, result.message))
    return actions


def resume_sweep(project: Project, index: RunIndex, sweep: Sweep) -> list[TrialAction]:
    """Continue a sweep: completed and pruned trials stay; stopped, interrupted and failed
    ones resume from their checkpoints through the queue (a trial stopped before it
    started waits again); queued and running ones stay; the queue runner is ensured.
    A cluster sweep's trials continue as one new Slurm job array instead
    (:func:`workbench.runs.cluster_array.resume_array`).

    Returns:
        One action per trial (``kept``, ``resumed``, ``requeued`` or ``refused`` with why).

    Raises:
        WorkbenchError: The sweep's study failed (no trial logged its metric): it does not resume.
    """
    from workbench.runs.cluster_launch import is_cluster_run
    from workbench.runs.liveness import reconcile
    from workbench.runs.resume import resume_run
    from workbench.runs.sweep_controller import settle_pruned

    current = index.get_sweep(sweep.id) or sweep
    if current.status == "failed":
        raise WorkbenchError(f"sweep {sweep.label} failed ({current.spec.get('failure') or 'see sweep show'}); "
                             "a failed study does not resume")
    reconcile(index)
    index.update_sweep(sweep.id, status="running")
    actions = []
    on_cluster: list[Run] = []
    for run in index.runs_of_sweep(sweep.id):
        run = settle_pruned(index, _gone_now(index, run), wait=15.0)  # a pruned trial stays pruned
        if not run.status.is_resumable:
            actions.append(TrialAction(run, "kept", str(run.status)))
            continue
        if is_cluster_run(run.run_dir):  # one new job array for them all, never the local queue
            on_cluster.append(run)
            continue
        if run.started_at is None:  # stopped while it waited: it waits again
            actions.append(TrialAction(_requeue(index, run, "waiting again (the sweep resumed)"), "requeued"))
            continue
        try:
            resumed = resume_run(project, index, run, start=False)
        except WorkbenchError as exc:
            actions.append(TrialAction(run, "refused", str(exc)))
            continue
        actions.append(TrialAction(_requeue(index, resumed, f"attempt {resumed.attempt}: waiting for a slot"),
                                   "resumed"))
    if on_cluster:
        from workbench.runs.cluster_array import resume_array

        actions += [TrialAction(*action) for action in resume_array(project, index, current, on_cluster)]
    if not current.spec.get("on"):
        _ensure_queue(project)
    if sweep.kind == "optuna":  # the study continues from its journal
        from workbench.runs.sweep_controller import start_controller

        start_controller(project, sweep.id)
    return actions


def _gone_now(index: RunIndex, run: Run) -> Run:
    """A ``running`` run whose supervisor and trainer are both gone is ``interrupted`` now,
    not only once its heartbeat is stale (after a crash of everything, resume at once)."""
    from workbench.runs.cluster_launch import is_cluster_run
    from workbench.runs.liveness import INTERRUPTED_ERROR, owner_alive
    from workbench.runs.locks import trainer_alive

    if run.status is not RunStatus.RUNNING or run.host not in (None, _host()) or owner_alive(run) \
            or trainer_alive(run.run_dir) or is_cluster_run(run.run_dir):  # Slurm's job state judges those
        return run
    index.mark_interrupted(run.id, INTERRUPTED_ERROR)
    return index.get_run(run.id) or run


def _host() -> str:
    from workbench.store import current_host

    return current_host()


def _requeue(index: RunIndex, run: Run, reason: str) -> Run:
    """Put a run back in the queue: queued, no owner, queued now (its place: the end)."""
    index.update_run(run.id, status=RunStatus.QUEUED, ended_at=None, stop_requested_at=None, stop_mode=None,
                     stop_reason=None, supervisor_pid=None, supervisor_create_time=None, assigned_device=None,
                     status_reason=reason, queued_at=time.time())
    if run.status is not RunStatus.QUEUED:
        index.add_event(run.id, "requeued", reason, {"from": run.status.value, "to": "queued"})
    return index.get_run(run.id) or run


def _ensure_queue(project: Project) -> None:
    from workbench.runs.queue import ensure_queue_runner

    ensure_queue_runner(project)
