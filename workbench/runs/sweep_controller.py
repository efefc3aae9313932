"""The Optuna controller of a sweep: ``python -m workbench.runs.sweep_controller ROOT SWEEP_ID``.

One per sweep, detached, guarded by an ``flock`` on ``.workbench/sweeps/<id>/controller.lock``.
The study lives in Optuna's ``JournalStorage`` file beside it (``study.journal``), so a crash
of this process loses nothing: the next controller (``workbench sweep resume``) reopens the
study and continues. Each trial is a normal run queued with the sweep's id and the tag
``optuna-trial-<number>``; the controller

- asks the study for trials while fewer than ``parallel`` are live and fewer than the
  sweep's trial count were asked, and queues each as a run on the sweep's snapshot (a sweep
  ``--on`` a cluster: submits each as a normal cluster run, its own Slurm job and watcher);
- reports the runs' intermediate values of the metric (read from the run index) and, when
  the pruner (median or Hyperband) says so, stops the run through
  :func:`workbench.runs.control.stop_run` with reason ``pruned`` (the run ends ``pruned``);
- warns, with a ``warning`` event on the trial, when a trial has validated (logged a
  ``val/`` key) without logging the sweep's metric;
- tells the study each trial's outcome: the run's last value of the metric when it
  completed (a run that never logged the metric fails its trial, with a warning on the
  run), ``PRUNED``, or ``FAIL`` for a failed run. A stopped or interrupted run keeps its
  trial running: ``sweep resume`` resumes it. When a trial completes without the metric
  and no trial of the sweep ever logged it, the study fails: the sweep's status becomes
  ``failed`` with the reason in its spec (``failure``), its live trials are stopped and
  every open trial is told ``FAIL``.

It exits when every trial is told, when the study failed, or when the sweep is stopped
and none of its runs is live. Optuna is imported here and nowhere else.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.store import Run, RunIndex, RunStatus

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.store._sweeps import Sweep

__all__ = ["CONTROLLER_LOCK", "PRUNERS", "STUDY_FILE", "TRIAL_TAG", "controller_alive", "main", "metric_missing",
           "settle_pruned", "start_controller", "sweep_dir"]

CONTROLLER_LOCK = "controller.lock"
STUDY_FILE = "study.journal"
#: A trial's run carries the tag ``optuna-trial-<number>``.
TRIAL_TAG = "optuna-trial-"
_LOOK_S = 0.5
#: ``--prune`` choices: Optuna's MedianPruner or HyperbandPruner.
PRUNERS = ("median", "hyperband")
#: Seconds a trial's first validation is given for all of its points to reach the index
#: (the metric writer flushes every few hundred milliseconds) before a missing metric is told.
_SETTLE_S = 0.4


def sweep_dir(project: Project, sweep_id: str) -> Path:
    """``.workbench/sweeps/<id>``: the study's journal, the controller's lock and log."""
    from workbench.snapshot import check_run_id

    return Path(project.state_dir) / "sweeps" / check_run_id(sweep_id)


def controller_alive(project: Project, sweep_id: str) -> bool:
    """Whether a controller holds the sweep's lock."""
    from workbench.runs.locks import held_by_someone

    return held_by_someone(sweep_dir(project, sweep_id) / CONTROLLER_LOCK)


def start_controller(project: Project, sweep_id: str) -> int | None:
    """Start the sweep's controller in its own session unless one runs; its pid, or None."""
    import subprocess

    from workbench.runs._launching import _env

    folder = sweep_dir(project, sweep_id)
    folder.mkdir(parents=True, exist_ok=True)
    if controller_alive(project, sweep_id):
        return None
    with open(folder / "controller.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "workbench.runs.sweep_controller", str(project.root), sweep_id],
                                cwd=str(project.root), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, env=_env())
    return proc.pid


def settle_pruned(index: RunIndex, run: Run, *, wait: float = 0.0) -> Run:
    """A trial its sweep's pruner stopped (stop reason ``pruned``) that ended ``stopped``
    ends ``pruned`` instead: final, never resumed. Its outcome file says so too.

    The trainer ends a stopped run ``stopped`` whatever the reason; once its owner (the
    supervisor) has written its last words, the sweep, which asked, turns that into the final
    ``pruned``. A trial the pruner asked to stop that died before it could (a crash: it
    ended ``interrupted``) is pruned too: the study decided, and resuming it would redo
    what was pruned. Other runs, and runs whose owner is still finishing after ``wait``
    seconds, are returned as they are.
    """
    if run.status not in (RunStatus.STOPPED, RunStatus.INTERRUPTED) or run.stop_reason != "pruned":
        return run
    from workbench.runs.liveness import owner_alive, wait_for_owner
    from workbench.runs.outcome import Outcome, write_outcome

    if owner_alive(run := wait_for_owner(index, run, wait)):
        return run
    if run.status not in (RunStatus.STOPPED, RunStatus.INTERRUPTED):
        return run
    ended = run.status.value

    if run.run_dir:
        try:
            write_outcome(Path(run.run_dir), Outcome(run.attempt, RunStatus.PRUNED, run.ended_at or time.time(),
                                                     run.exit_code, run.signal, "pruned by its sweep", run.step,
                                                     run.started_at))
        except OSError:
            pass  # the index still says how it ended
    index.update_run(run.id, status=RunStatus.PRUNED, status_reason="pruned by its sweep")
    index.add_event(run.id, "pruned", "pruned by its sweep: its metric trailed the other trials'",
                    {"from": ended, "to": "pruned", "reason": "pruned"})
    return index.get_run(run.id) or run


def metric_missing(metric: str, keys: list[str]) -> str:
    """The one line that says a trial logged ``keys`` but not the sweep's ``metric``."""
    shown = ", ".join(keys[:8]) + (", …" if len(keys) > 8 else "")
    return f"the sweep's metric {metric} is not among the keys this trial logged ({shown or 'none'})"


def _pruner(kind: str | None) -> Any:
    """Optuna's pruner for ``--prune`` (None: no pruning).

    Hyperband runs with Optuna's defaults: resources from 1 step to the last step of the
    first completed trial (``max_resource="auto"``), reduction factor 3; a point's step is
    its resource, as the median pruner reads it.
    """
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto", reduction_factor=3)
    return optuna.pruners.NopPruner()


def _has_checkpoint(run: Run) -> bool:
    from workbench.runs.resume import step_checkpoints

    return bool(run.run_dir) and bool(step_checkpoints(Path(run.run_dir)))


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _distributions(sweep: Sweep) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Optuna distributions of the sweep's parameters, and for value lists text → text."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from workbench.runs.sweep_spec import Distribution, parse_param

    dists: dict[str, Any] = {}
    texts: dict[str, dict[str, str]] = {}
    for typed in sweep.spec["params"]:
        param = parse_param(typed)
        if isinstance(param, Distribution):
            if param.kind == "intuniform":
                dists[param.key] = IntDistribution(int(param.low), int(param.high))
            else:
                dists[param.key] = FloatDistribution(param.low, param.high, log=param.log)
        else:  # a value list: categorical over the values' texts
            dists[param.key] = CategoricalDistribution([item.text for item in param.items])
            texts[param.key] = {item.text: item.text for item in param.items}
    return dists, texts


def _overrides(params: dict[str, Any], texts: dict[str, dict[str, str]]) -> list[str]:
    from workbench.runs.sweep_spec import toml_text

    return [f"{key}={texts[key][value] if key in texts else toml_text(value)}" for key, value in params.items()]


class Controller:
    """One sweep's study, its runs and the loop between them."""

    def __init__(self, project: Project, index: RunIndex, sweep: Sweep) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.project, self.index, self.sweep = project, index, sweep
        spec = sweep.spec
        self.metric = sweep.metric or "val/loss"
        self.count = int(spec["trials"])
        self.parallel = sweep.parallel or 1
        folder = sweep_dir(project, sweep.id)
        folder.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / STUDY_FILE)))
        self.study = optuna.create_study(
            study_name=sweep.id, storage=storage, load_if_exists=True, pruner=_pruner(spec.get("prune")),
            direction="maximize" if sweep.direction == "max" else "minimize")
        # A controller that restarts (resume after a crash) must not replay the seeded
        # stream from the start: that would ask the first trials' values again.
        seed = spec.get("seed")
        asked = len(self.study.get_trials(deepcopy=False))
        self.study.sampler = optuna.samplers.TPESampler(seed=None if seed is None else int(seed) + asked)
        self.dists, self.texts = _distributions(sweep)
        self.metric_seen = False  # once a trial logged the metric, nothing is checked any more
        self.validated: dict[str, float] = {}  # run id -> when its first validation was seen
        self.warned: set[str] = set()

    def runs_by_trial(self) -> dict[int, Run]:
        found = {}
        for run in self.index.runs_of_sweep(self.sweep.id):
            for tag in run.tags:
                if tag.startswith(TRIAL_TAG) and tag[len(TRIAL_TAG):].isdigit():
                    found[int(tag[len(TRIAL_TAG):])] = run
        return found

    def queue(self, number: int, params: dict[str, Any]) -> None:
        """Queue trial ``number`` as a run of the sweep (on its snapshot)."""
        from workbench.runs.launch import LaunchRequest
        from workbench.runs.queue import enqueue
        from workbench.snapshot import Snapshot

        spec = self.sweep.spec
        name = f"{self.sweep.name}-{number + 1}" if self.sweep.name else None
        request = LaunchRequest(self.sweep.task, [*spec.get("fixed", []), *_overrides(params, self.texts)],
                                spec.get("profile"), spec.get("device"), name=name,
                                tags=[*spec.get("tags", []), f"{TRIAL_TAG}{number}"], on=spec.get("on"))
        try:
            if request.on:  # on a cluster: a normal --on run, its own Slurm job now (this loop keeps `parallel`)
                from workbench.runs.launch import launch

                run = launch(self.project, request, index=self.index, snapshot=Snapshot.from_dict(spec["snapshot"]))
                self.index.update_run(run.id, sweep_id=self.sweep.id)
            else:
                run = enqueue(self.project, request, index=self.index, sweep_id=self.sweep.id,
                              snapshot=Snapshot.from_dict(spec["snapshot"]))
        except WorkbenchError as exc:  # a value its field refuses: the trial fails, the study goes on
            from optuna.trial import TrialState

            _log(f"trial {number} refused: {exc}")
            self.study.tell(number, state=TrialState.FAIL)
            return
        _log(f"trial {number}: run {run.id} {' '.join(request.overrides)}")

    def step(self) -> bool:
        """One look: tell finished trials, prune, ask new ones. Returns whether to go on."""
        from optuna.trial import Trial, TrialState

        sweep = self.index.get_sweep(self.sweep.id)
        if sweep is None or sweep.status == "failed":
            return False
        self.sweep = sweep
        runs = self.runs_by_trial()
        trials = self.study.get_trials(deepcopy=False)
        live = 0
        for frozen in trials:
            if frozen.state is not TrialState.RUNNING:
                continue
            run = runs.get(frozen.number)
            if run is not None:
                run = settle_pruned(self.index, run)
            if run is None:  # asked, then the controller died before queueing it
                if sweep.status == "running":
                    self.queue(frozen.number, frozen.params)
                    live += 1
                continue
            if run.status in (RunStatus.COMPLETED, RunStatus.PRUNED):
                self.catch_up(Trial(self.study, frozen._trial_id), frozen, run)
            if run.status is RunStatus.COMPLETED:
                value = self.index.last_metrics(run.id).get(self.metric)
                if value is None:
                    self.index.add_event(run.id, "warning", f"the sweep's metric {self.metric} was never logged: "
                                                            "its trial failed", {"metric": self.metric})
                    self.study.tell(frozen.number, state=TrialState.FAIL)
                    if not self.metric_logged(runs.values()):
                        self.fail(sweep, run)
                        return False
                else:
                    self.study.tell(frozen.number, value)
                _log(f"trial {frozen.number}: {self.metric} {value}")
            elif run.status is RunStatus.PRUNED:
                self.study.tell(frozen.number, state=TrialState.PRUNED)
                _log(f"trial {frozen.number}: pruned")
            elif run.status is RunStatus.FAILED:
                self.study.tell(frozen.number, state=TrialState.FAIL)
            elif run.status in (RunStatus.STOPPED, RunStatus.INTERRUPTED) and run.stop_reason != "pruned" \
                    and sweep.status == "running" and not _has_checkpoint(run):
                # stopped or interrupted before its first checkpoint: nothing to resume
                self.index.add_event(run.id, "warning", "it ended before its first checkpoint, so it cannot "
                                                        "resume: its trial failed")
                self.study.tell(frozen.number, state=TrialState.FAIL)
                _log(f"trial {frozen.number}: failed (no checkpoint to resume from)")
            elif run.status.is_live or (run.status is RunStatus.STOPPED and run.stop_reason == "pruned"):
                live += 1  # a pruned run counts until its supervisor has ended it
                if run.status is RunStatus.RUNNING and not run.stop_requested:
                    self.watch_metric(run)
                    self.report(Trial(self.study, frozen._trial_id), frozen, run)
        asked = len(trials)
        while sweep.status == "running" and asked < self.count and live < self.parallel:
            trial = self.study.ask(self.dists)
            self.queue(trial.number, trial.params)
            asked += 1
            live += 1
        if live or (sweep.status == "running" and asked < self.count):
            return True
        if all(t.state is not TrialState.RUNNING for t in self.study.get_trials(deepcopy=False)):
            self.index.update_sweep(sweep.id, status="done")
            _log("every trial is told; the study is done")
        else:  # stopped, or its runs stopped or interrupted: `sweep resume` brings us back
            _log("nothing live; exiting until the sweep is resumed")
        return False

    def metric_logged(self, runs: Any) -> bool:
        """Whether any of ``runs`` logged the sweep's metric."""
        self.metric_seen = self.metric_seen or any(self.metric in self.index.metric_keys(r.id) for r in runs)
        return self.metric_seen

    def watch_metric(self, run: Run) -> None:
        """Warn once per trial (an event) when it validated but did not log the sweep's metric.

        "Validated" means it logged a ``val/`` key at an earlier look: the rest of that
        validation's points had time to reach the index.
        """
        from workbench.runs.sampler import is_system_key

        if self.metric_seen or run.id in self.warned:
            return
        keys = [k for k in self.index.metric_keys(run.id) if not is_system_key(k)]
        if self.metric in keys:
            self.metric_seen = True
            return
        if not any(k.startswith("val/") for k in keys):
            return
        first = self.validated.setdefault(run.id, time.monotonic())
        if time.monotonic() - first < _SETTLE_S:
            return
        self.warned.add(run.id)
        if any(e.kind == "warning" and (e.data or {}).get("missing_metric") == self.metric
               for e in self.index.events(run.id)):
            return  # told by an earlier controller of this sweep
        message = metric_missing(self.metric, keys)
        self.index.add_event(run.id, "warning", message + " (check the sweep's --metric)",
                             {"missing_metric": self.metric, "keys": keys})
        _log(f"run {run.id}: {message}")

    def fail(self, sweep: Sweep, run: Run) -> None:
        """The study fails: no trial ever logged its metric. Live trials stop, open trials fail."""
        from optuna.trial import TrialState

        from workbench.runs.control import stop_run
        from workbench.runs.sampler import is_system_key

        keys = [k for k in self.index.metric_keys(run.id) if not is_system_key(k)]
        shown = ", ".join(keys[:8]) + (", …" if len(keys) > 8 else "")
        why = (f"no trial logged {self.metric}, the sweep's metric: trial run {run.id} completed having logged "
               f"{shown or 'nothing'}; start a new sweep with --metric set to one of those")
        for live in self.index.runs_of_sweep(sweep.id):  # as `sweep stop` does, with its own reason
            if not live.status.is_live or (live.status is RunStatus.QUEUED
                                           and self.index.cancel_queued(live.id, "sweep failed")):
                continue
            try:
                stop_run(self.index, live, reason="sweep failed")
            except WorkbenchError:
                pass  # it ended meanwhile
        for frozen in self.study.get_trials(deepcopy=False):
            if frozen.state is TrialState.RUNNING:
                self.study.tell(frozen.number, state=TrialState.FAIL)
        self.index.update_sweep(sweep.id, status="failed", spec={**sweep.spec, "failure": why})
        _log(f"the study failed: {why}")

    def catch_up(self, trial: Any, frozen: Any, run: Run) -> list[tuple[int, float]]:
        """Report the run's points of the metric the study does not have yet; return them.

        A trial that ended between two looks has its last points reported before its outcome
        is told: the pruners compare later trials with its whole curve, and Hyperband sizes
        its brackets from the first completed trial's last step.
        """
        reported = frozen.intermediate_values
        points = [(step, value) for step, value, _ in self.index.points(run.id, self.metric) if step not in reported]
        for step, value in points:
            if value == value:  # NaN is not reported
                trial.report(value, step)
        return points

    def report(self, trial: Any, frozen: Any, run: Run) -> None:
        """Report the run's new points of the metric; stop it (reason ``pruned``) if the pruner says so."""
        from workbench.runs.control import stop_run

        points = self.catch_up(trial, frozen, run)
        if points and trial.should_prune():
            try:
                stop_run(self.index, run, reason="pruned")
                _log(f"trial {frozen.number}: pruning run {run.id} at step {points[-1][0]}")
            except WorkbenchError:
                pass  # it ended meanwhile


def serve(root: Path, sweep_id: str) -> int:
    """Hold the sweep's lock and run the study until it is done or stopped."""
    from workbench.project import load_project
    from workbench.runs.locks import FileLock, LockHeld

    project = load_project(root)
    folder = sweep_dir(project, sweep_id)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock(folder / CONTROLLER_LOCK).acquire(wait=0)
    except LockHeld:
        return 0
    try:
        with RunIndex(project.index_path) as index:
            sweep = index.get_sweep(sweep_id)
            if sweep is None:
                _log(f"no sweep {sweep_id}")
                return 1
            controller = Controller(project, index, sweep)
            _log(f"serving sweep {sweep_id}")
            while controller.step():
                time.sleep(_LOOK_S)
    finally:
        lock.release()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m workbench.runs.sweep_controller PROJECT_ROOT SWEEP_ID``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m workbench.runs.sweep_controller PROJECT_ROOT SWEEP_ID", file=sys.stderr)
        return 2
    return serve(Path(args[0]), args[1])


if __name__ == "__main__":
    sys.exit(main())
