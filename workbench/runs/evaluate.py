"""``workbench test`` / ``workbench eval``: test or evaluate one of a run's checkpoints.

An evaluation is a run of its own (kind ``evaluation``, ``parent_id`` the run it tests):
its own folder, process, metrics and events, shown under its run. It takes the run's code
snapshot, config, device, precision and numerics settings; only the task's **eval-time**
fields (``eval_fields = ("threshold", "batch_size")`` on the task class, read statically)
may change. Its ``run.toml`` names the step (``steps = ["test"]`` or ``["evaluate"]``) and
the checkpoint whose weights are loaded first (``weights``); the training process does the
rest. :func:`prepare_evaluation` makes every refusal before anything is written.
"""

from __future__ import annotations

import copy
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.checkpoint_names import best_file, checkpoint_folder, step_files, step_of
from workbench.errors import WorkbenchError
from workbench.runs.launch import start_supervisor
from workbench.runs.liveness import SHUTDOWN_WAIT_S, reconcile, run_alive, wait_for_owner
from workbench.runs.locks import launch_lock
from workbench.runs.present import flatten_config
from workbench.runs.spec import RunSpec, check_round_trip, read_spec, run_dir_of, toml_literal, write_spec
from workbench.store import EVALUATION, Run, RunIndex, RunStatus, new_run_id

if TYPE_CHECKING:
    from workbench.project import Project, TaskInfo

__all__ = [
    "VERBS",
    "PreparedEvaluation",
    "checkpoint_label",
    "choose_checkpoint",
    "evaluate_run",
    "evaluation_records",
    "evaluation_verb",
    "prepare_evaluation",
]

#: The command's verb -> the task's meta-algorithm (the evaluation's one step).
VERBS = {"test": "test", "eval": "evaluate", "evaluate": "evaluate"}

#: What ``--checkpoint`` takes, for messages.
_CHOICES = "last, best or step-N"


@dataclass
class PreparedEvaluation:
    """A checked evaluation: what it runs, on which checkpoint, with which config.

    Attributes:
        parent: The run whose checkpoint is evaluated.
        parent_dir: Its folder.
        spec: Its launch spec (``run.toml``).
        task: The task as the run's code snapshot declares it.
        step: The meta-algorithm: ``test`` or ``evaluate``.
        checkpoint: The checkpoint file (absolute).
        label: The checkpoint as people name it: ``last (step 120)``, ``best``, ``step 60``.
        config: The run's config with the overrides applied.
        overrides: The overridden fields (dotted names) and their typed values.
        name: The evaluation's name (``<run>-test-1``), or None.
    """

    parent: Run
    parent_dir: Path
    spec: RunSpec
    task: TaskInfo
    step: str
    checkpoint: Path
    label: str
    config: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    name: str | None = None


def _intact(path: Path) -> bool:
    """Whether a checkpoint file is whole (torch writes a zip archive: a truncated one has no
    central directory). Whether it *loads* is the training process's business."""
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def choose_checkpoint(run: Run, run_dir: Path, choice: str = "last") -> tuple[Path, str]:
    """The checkpoint file ``choice`` names in ``run``'s folder.

    Args:
        run: The run (for messages).
        run_dir: Its folder.
        choice: ``last`` (the newest whole step checkpoint), ``best`` (``best.pt``) or
            ``step-N`` (the checkpoint at step N; a bare ``N`` works too).

    Returns:
        The file and how people name it (``last (step 120)``, ``best``, ``step 60``).

    Raises:
        WorkbenchError: The run has no checkpoint, or none by that name (the message lists
            the ones it has).
    """
    folder = checkpoint_folder(run_dir)
    steps = step_files(folder)  # newest first
    best = best_file(folder)
    have = [f"step-{s}" for s, _ in reversed(steps)] + (["best"] if best.is_file() else [])
    if not have:
        raise WorkbenchError(f"run {run.id} has no checkpoint to test (it ended before writing one)")
    text = (choice or "last").strip().lower()
    if text == "last":
        for step, path in steps:
            if _intact(path):
                return path, f"last (step {step})"
        if steps:
            raise WorkbenchError(f"none of run {run.id}'s step checkpoints is whole "
                                 f"({', '.join(p.name for _, p in steps)}); try --checkpoint best")
        raise WorkbenchError(f"run {run.id} has no step checkpoint, only best.pt; use --checkpoint best")
    if text in ("best", "best.pt"):
        if not best.is_file():
            raise WorkbenchError(f"run {run.id} has no best checkpoint (best.pt is written only when its "
                                 f"Checkpoint watches a validation metric); it has: {', '.join(have)}")
        return best, "best"
    wanted = _step_number(text)
    if wanted is None:
        raise WorkbenchError(f"bad --checkpoint {choice!r}: use {_CHOICES}")
    for step, path in steps:
        if step == wanted:
            if not _intact(path):
                raise WorkbenchError(f"run {run.id}'s checkpoint at step {step} ({path.name}) is not whole; "
                                     f"it has: {', '.join(have)}")
            return path, f"step {step}"
    raise WorkbenchError(f"run {run.id} has no checkpoint at step {wanted}; it has: {', '.join(have)}")


def _step_number(text: str) -> int | None:
    if text.endswith(".pt"):
        found = step_of(text)
        return found
    if text.startswith("step-"):
        text = text[len("step-"):]
    return int(text) if text.isdigit() else None


def checkpoint_label(evaluation: Run, parent: Run | None = None) -> str:
    """How an evaluation's checkpoint reads to people: ``best``, ``last`` (the run's final
    step) or ``step 60``; the file name when it is none of those."""
    path = evaluation.parent_checkpoint or ""
    name = Path(path).name
    if name == best_file("").name:
        return "best"
    step = step_of(name)
    if step is None:
        return name or "—"
    if parent is not None and parent.step is not None and step == parent.step:
        return f"last (step {step})"
    return f"step {step}"


def evaluation_verb(index: RunIndex, evaluation: Run) -> str:
    """The meta-algorithm an evaluation runs (``test`` or ``evaluate``), from its steps."""
    steps = index.run_steps(evaluation.id)
    return steps[0].name if steps else "test"


def evaluation_records(index: RunIndex, run: Run) -> list[dict[str, Any]]:
    """``run``'s evaluations, oldest first, as :func:`~workbench.runs.present.evaluation_record`
    writes them (what they ran, on which checkpoint, with which overrides, their metrics)."""
    from workbench.runs.present import evaluation_record

    return [evaluation_record(e, evaluation_verb(index, e), checkpoint_label(e, run), index.last_metrics(e.id))
            for e in index.evaluations_of(run.id)]


def _task(project: Project, spec: RunSpec) -> TaskInfo:
    """The task as the run's code snapshot declares it (its eval-time fields then are the
    ones the code that runs has), else as the project declares it now."""
    from workbench.project import discover, discover_paths

    code = Path(spec.code_dir)
    if (code / spec.task_file).is_file():
        found = discover_paths(code, project.task_globs)
        if any(t.name == spec.task for t in found.tasks):
            return found.get(spec.task)
    return discover(project).get(spec.task)


def _allowed(key: str, eval_fields: Sequence[str]) -> bool:
    return any(key == f or key.startswith(f + ".") for f in eval_fields)


def _declare_hint(task: TaskInfo) -> str:
    example = next((f.name for f in task.config if "batch" in f.name), task.config[0].name if task.config else "x")
    return f'declare them on the task class, e.g. eval_fields = ("{example}",) (docs/tasks.md)'


def check_overrides(task: TaskInfo, overrides: Sequence[str]) -> list[str]:
    """Refuse an override of a field that is not eval-time; return the keys given.

    Raises:
        WorkbenchError: One line: the field, and the ones an evaluation may change (or
            how to declare them).
    """
    from workbench.project import parse_override

    known = {f.name for f in task.config}
    groups = {n.rsplit(".", i)[0] for n in known for i in range(1, n.count(".") + 1)}
    keys = []
    for text in overrides:
        key, _ = parse_override(text)
        if _allowed(key, task.eval_fields):
            keys.append(key)
            continue
        listing = ", ".join(task.eval_fields)
        if key not in known and key not in groups:
            from workbench.configtypes import suggestion

            may = f"the fields it may change: {listing}" if listing else _declare_hint(task)
            raise WorkbenchError(f"unknown config key '{key}' for {task.name}; {may}"
                                 f"{suggestion(key, list(task.eval_fields) or sorted(known))}")
        if listing:
            raise WorkbenchError(f"'{key}' is a training field of {task.name}; an evaluation may change only "
                                 f"its eval-time fields: {listing}")
        raise WorkbenchError(f"{task.name} declares no eval-time fields, so an evaluation uses the run's own "
                             f"config and '{key}' cannot change; {_declare_hint(task)}")
    return keys


def _apply(task: TaskInfo, parent_config: dict[str, Any], overrides: Sequence[str],
           keys: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parent's config with the overrides applied, and the overridden values (typed by
    the config machinery, as ``fork`` types them)."""
    from workbench.project import resolve_config

    base = [f"{k}={toml_literal(v)}" for k, v in flatten_config(parent_config).items() if v is not None]
    resolved = flatten_config(resolve_config(list(task.config), overrides=[*base, *overrides],
                                             task_name=task.name))
    changed = {k: v for k, v in resolved.items() if any(k == key or k.startswith(key + ".") for key in keys)}
    config = copy.deepcopy(parent_config)
    for dotted, value in changed.items():
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config, changed


def _name(index: RunIndex, parent: Run, step: str) -> str | None:
    from workbench.runs.names import check_run_name

    taken, ids = index.run_names(), index.run_ids()
    number = len(index.evaluations_of(parent.id)) + 1
    verb = "eval" if step == "evaluate" else step
    for n in range(number, number + 50):
        name = f"{parent.label}-{verb}-{n}"
        try:
            check_run_name(name, taken, ids)
        except WorkbenchError:
            continue
        return name
    return None


def prepare_evaluation(project: Project, index: RunIndex, run: Run, verb: str, *, checkpoint: str = "last",
                       overrides: Sequence[str] = (), probe: dict[str, Any] | None = None) -> PreparedEvaluation:
    """Check an evaluation of ``run`` without writing anything.

    Args:
        project: The project.
        index: Its run index.
        run: The run whose checkpoint to evaluate.
        verb: ``test`` or ``eval`` (``evaluate``).
        checkpoint: ``last``, ``best`` or ``step-N``.
        overrides: ``KEY=VALUE`` changes of eval-time fields.
        probe: The device probe's answer (default: the cached probe).

    Raises:
        WorkbenchError: One line: an evaluation of an evaluation, a run still going, a run
            that is not a task's, no such checkpoint, a field that is not eval-time, a bad
            value, a device this machine lacks.
    """
    from workbench.runs.probe import check_device, probe_devices

    step = VERBS.get(verb)
    if step is None:
        raise WorkbenchError(f"unknown verb {verb!r}: test or eval")
    reconcile(index)
    run = index.get_run(run.id) or run
    if run.is_evaluation:
        raise WorkbenchError(f"run {run.id} is itself an evaluation (of run {run.parent_id}); "
                             f"evaluate the run: workbench {verb} {run.parent_id}")
    if run.kind != "task":
        raise WorkbenchError(f"run {run.id} is a{'n' if run.kind[:1] in 'aeiou' else ''} {run.kind} run; "
                             "only a task's runs have checkpoints workbench can test")
    if run.status.is_live:
        raise WorkbenchError(f"run {run.id} is still {run.status}; wait for it or stop it "
                             f"(workbench stop {run.id}), then test its checkpoints")
    run = wait_for_owner(index, run, alive=run_alive)  # its supervisor writes its last words
    if run_alive(run):
        raise WorkbenchError(f"run {run.id} has ended but its processes are still shutting down after "
                             f"{SHUTDOWN_WAIT_S:g} s; try again when they have exited")
    parent_dir = Path(run.run_dir or run_dir_of(project, run.id))
    spec = read_spec(parent_dir)
    path, label = choose_checkpoint(run, parent_dir, checkpoint)
    task = _task(project, spec)
    keys = check_overrides(task, overrides)
    config, changed = _apply(task, dict(spec.config), overrides, keys)
    check_device(spec.device, "single", 1, probe if probe is not None else probe_devices(project.state_dir))
    if not (parent_dir / "code").is_dir() and not run.snapshot_commit:
        raise WorkbenchError(f"run {run.id} has neither a code folder nor a snapshot commit to test with")
    prepared = PreparedEvaluation(run, parent_dir, spec, task, step, path, label, config, changed,
                                  _name(index, run, step))
    check_round_trip(_spec(prepared, "0" * 12, Path(project.runs_dir) / ("0" * 12)))
    return prepared


def _spec(prepared: PreparedEvaluation, run_id: str, run_dir: Path) -> RunSpec:
    parent = prepared.spec
    return RunSpec(**{
        **asdict(parent), "id": run_id, "config": prepared.config, "name": prepared.name or "",
        "code_dir": str(run_dir / "code"), "backend": "single", "nproc": 1, "tags": [],
        "resume_from": "", "steps": [prepared.step], "weights": str(prepared.checkpoint),
        "evaluation_of": prepared.parent.id,
    })


def _materialise(project: Project, prepared: PreparedEvaluation, code_dir: Path) -> None:
    """The run's code: from its snapshot commit, else a copy of its code folder."""
    from workbench.snapshot import SnapshotError, SnapshotRepo

    commit = prepared.parent.snapshot_commit
    if commit:
        try:
            SnapshotRepo.open(project.root, project.state_dir).materialise(commit, code_dir)
            return
        except SnapshotError:
            shutil.rmtree(code_dir, ignore_errors=True)
    source = prepared.parent_dir / "code"
    if not source.is_dir():
        raise WorkbenchError(f"the code of run {prepared.parent.id} cannot be found (snapshot {commit or 'none'})")
    shutil.copytree(source, code_dir, symlinks=True)


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def evaluate_run(project: Project, index: RunIndex, run: Run, verb: str, *, checkpoint: str = "last",
                 overrides: Sequence[str] = (), probe: dict[str, Any] | None = None, start: bool = True) -> Run:
    """Test or evaluate one of ``run``'s checkpoints as a new evaluation run.

    Args:
        project: The project.
        index: Its run index.
        run: The run (ended, not an evaluation).
        verb: ``test`` or ``eval``.
        checkpoint: ``last`` (default), ``best`` or ``step-N``.
        overrides: ``KEY=VALUE`` changes of the task's eval-time fields.
        probe: The device probe's answer (default: the cached probe).
        start: Start its supervisor (tests may start it themselves).

    Returns:
        The evaluation (status ``queued``).

    Raises:
        WorkbenchError: See :func:`prepare_evaluation`; nothing is written then.
    """
    prepared = prepare_evaluation(project, index, run, verb, checkpoint=checkpoint, overrides=overrides,
                                  probe=probe)
    parent = prepared.parent
    run_id = new_run_id()
    run_dir = run_dir_of(project, run_id)
    try:
        with launch_lock(run_dir):  # gc leaves the folder alone until the row exists
            _materialise(project, prepared, run_dir / "code")
            (run_dir / "artifacts").mkdir()
            write_spec(run_dir, _spec(prepared, run_id, run_dir))
            row = index.create_run(
                id=run_id, name=prepared.name, task=prepared.spec.task, status=RunStatus.QUEUED,
                device=prepared.spec.device, backend="single", nproc=1, precision=prepared.spec.precision,
                config=prepared.config, run_dir=str(run_dir), git_head=parent.git_head,
                git_branch=parent.git_branch, git_dirty=parent.git_dirty, snapshot_commit=parent.snapshot_commit,
                parent_id=parent.id, parent_checkpoint=_relative(prepared.checkpoint, prepared.parent_dir),
                kind=EVALUATION, overrides=prepared.overrides,
            )
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        if index.get_run(run_id) is not None:
            index.delete_run(run_id)
        raise
    index.plan_steps(run_id, [prepared.step])
    changed = " ".join(f"{k}={v}" for k, v in prepared.overrides.items())
    data = {"parent": parent.id, "step": prepared.step, "checkpoint": row.parent_checkpoint,
            "label": prepared.label, "overrides": prepared.overrides}
    index.add_event(run_id, "launched", f"{prepared.step} of run {parent.id} at {prepared.label}"
                    + (f" with {changed}" if changed else ""), data)
    index.add_event(parent.id, "evaluation", f"{prepared.step} {run_id} at {prepared.label}"
                    + (f" with {changed}" if changed else ""), {**data, "evaluation": run_id})
    if start:
        start_supervisor(project, index, row)
    return index.get_run(run_id) or row
