"""A run's training process: ``python -m workbench.runs.train RUN_DIR``.

Imports the task from the run's code snapshot, builds the backend, runs the run's steps
(``fit()``, then ``test()`` / ``evaluate()`` where the run asks for them), and
writes metrics (through ``MetricWriter``), progress and heartbeats to the run index —
rank 0 only under DDP — or, with ``sink = "journal"`` in ``run.toml`` (or
``WORKBENCH_SINK=journal``), to the run folder's journal, which the supervisor ingests. SIGINT or SIGTERM finish the current batch, flush the metrics,
mark the run ``stopped`` and exit 0.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.runs.locks import TRAINER_LOCK, FileLock, LockHeld
from workbench.runs.outcome import Outcome, write_outcome
from workbench.store import RunStatus, StopMode

__all__ = ["IndexReporter", "import_task", "main"]


class IndexReporter:
    """Sends progress to the run index (through the metric writer's progress slot), and prints
    each epoch's line to the run's output, as a fit in a terminal does (``workbench logs`` and
    the app's Output tab show it)."""

    def __init__(self, writer: Any, first_epoch_check: Callable[[], None] | None = None) -> None:
        self.writer = writer
        self._first_epoch_check = first_epoch_check

    def _send(self, info: Any) -> None:
        self.writer.progress(info.step, info.total, info.epoch)

    start = update = finish = _send

    def epoch_end(self, info: Any) -> None:
        """Send the progress and print the epoch's line."""
        from workbench.extensions.progress import epoch_line

        self._send(info)
        print(epoch_line(info), flush=True)
        check, self._first_epoch_check = self._first_epoch_check, None
        if check is not None:
            check()


def _first_epoch_check(index: Any, run_id: str, writer: Any, journal: Any) -> Callable[[], None] | None:
    """What rank 0 checks after its first epoch: a grid or random trial, its sweep's metric."""
    if journal is not None or index is None:
        return None  # a cluster run's index is its journal: the sweep's table tells the metric's absence
    from workbench.runs.sweep_metric import sweep_metric_check

    return sweep_metric_check(index, run_id, writer)


def import_task(code_dir: Path, task_file: str, module: str, name: str) -> type:
    """Import task class ``name`` from ``code_dir/task_file`` (the run's code snapshot).

    The snapshot's root and the task file's folder go first on ``sys.path``, so the task
    file imports its neighbours the same way it does when run on its own.
    """
    path = (code_dir / task_file).resolve()
    if not path.is_file():
        raise ImportError(f"{task_file} is not in the run's code snapshot ({code_dir})")
    for folder in (str(path.parent), str(code_dir)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    parts = module.split(".")
    is_package = all((code_dir.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts)))
    if len(parts) > 1 and is_package:
        mod = importlib.import_module(module)
    else:
        spec = importlib.util.spec_from_file_location(module, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[module] = mod
        spec.loader.exec_module(mod)
    try:
        return getattr(mod, name)
    except AttributeError:
        raise ImportError(f"{task_file} defines no class {name}") from None


def _event_writer(index: Any, run_id: str) -> Any:
    """A callback that records checkpoint events in the index (rank 0), else does nothing."""
    def on_event(kind: str, message: str, data: dict) -> None:
        if index is not None:
            index.add_event(run_id, kind, message, data)
            if kind == "checkpoint":
                index.update_run(run_id)  # bump updated_at so watchers see the new event
    return on_event


def _stopped_before_training(run_dir: Path, attempt: int) -> bool:
    """Whether every earlier attempt ended before its first step and left no checkpoint: a
    stop signal, or Slurm's warning, that came while the trainer was starting. The job that
    Slurm requeued then begins again from the start (nothing was trained or logged)."""
    from workbench.checkpoint_names import checkpoint_folder
    from workbench.runs.outcome import read_outcomes

    folder = checkpoint_folder(run_dir)
    if folder.is_dir() and any(folder.iterdir()):
        return False  # checkpoints that do not load: that is not a fresh start
    earlier = [o for o in read_outcomes(run_dir) if o.attempt < attempt]
    return len(earlier) == attempt - 1 and all(not o.last_step for o in earlier)


def _restore(task: Any, spec: Any, attempt: int, run_dir: Path, index: Any, on_event: Any) -> None:
    """Continue from a checkpoint: the latest good one on a resume, the parent's on a fork.

    Points the earlier attempt logged after the checkpoint's step are set aside (kept for the
    replay check) before this attempt logs anything.
    """
    from workbench.checkpoint_names import checkpoint_folder
    from workbench.errors import WorkbenchError
    from workbench.extensions.checkpoint import load_checkpoint, load_latest

    found = load_latest(checkpoint_folder(run_dir), on_event) if attempt > 1 else None
    fork = False
    if found is None and spec.resume_from:
        path = Path(spec.resume_from)
        try:
            found = (path, load_checkpoint(path))
        except ValueError as exc:
            raise WorkbenchError(f"cannot start from {path}: {exc}") from None
        fork = True
    if found is None:
        if attempt > 1 and not _stopped_before_training(run_dir, attempt):
            raise WorkbenchError("no checkpoint of this run could be loaded; launch it again")
        return
    path, checkpoint = found
    task.restore(checkpoint, fork=fork)
    state = task.state
    if index is not None:
        _check_points_before(index, spec.id, state.step, on_event)
        moved = index.set_aside_after(spec.id, state.step)
        index.add_event(spec.id, "restored",
                        f"from {path.name}: step {state.step}, epoch {state.epoch + 1}, "
                        f"batch {state.batch_in_epoch}" + (f"; {moved} later point(s) set aside" if moved else ""),
                        {"checkpoint": path.name, "step": state.step, "set_aside": moved, "fork": fork})


def _check_points_before(index: Any, run_id: str, step: int, on_event: Any) -> None:
    """Say loudly when the index lacks points that the checkpoint at ``step`` covers.

    A key logged at every step (its points before the checkpoint are one per step, with no
    hole) must reach the checkpoint's step: if its last point is earlier, the points in
    between were lost (a crash before they were written) and this attempt will not log
    them again — the curve keeps a gap. Nothing is changed; the run goes on.
    """
    missing = []
    for key in index.metric_keys(run_id):
        count, first, last = index.step_span(run_id, key, step)
        if count < 2 or first is None or last is None or last >= step:
            continue
        if last - first + 1 == count:  # dense: logged every step
            missing.append((key, last + 1, step))
    if missing:
        text = "; ".join(f"{key} steps {low}-{high}" for key, low, high in missing[:5])
        message = f"points missing before the checkpoint at step {step}: {text} (lost in a crash; the curves keep a gap)"
        print(f"warning: {message}", file=sys.stderr, flush=True)
        on_event("points-missing", message, {"step": step, "missing": [list(m) for m in missing]})


def _check_replay(index: Any, run_id: str, attempt: int) -> None:
    """Record whether the points replayed by this attempt match the ones set aside."""
    from workbench.runs.resume import compare_replay, replay_summary

    if attempt < 2:
        return
    if hasattr(index, "record_replay"):  # a journal: compared once its points are ingested
        index.record_replay(run_id, attempt)
        return
    result = compare_replay(index, run_id, attempt) or {"matched": 0, "compared": 0, "first_divergence": None}
    index.add_event(run_id, "replay", replay_summary(result), result)


class _Pipeline:
    """The run's steps in order (``spec.steps``, else ``fit``): each recorded in the index as
    it starts and ends; a resumed run skips the steps an earlier attempt completed and
    continues at the first one that is not, as mml's scheduler does.
    """

    def __init__(self, spec: Any, attempt: int, run_dir: Path, index: Any, on_event: Any) -> None:
        from workbench.errors import WorkbenchError
        from workbench.runs.spec import STEPS

        self.spec, self.attempt, self.run_dir, self.index, self.on_event = spec, attempt, run_dir, index, on_event
        self.steps = list(spec.steps) or ["fit"]
        unknown = [name for name in self.steps if name not in STEPS]
        if unknown:
            raise WorkbenchError(f"run.toml: unknown step {unknown[0]!r}; steps are {', '.join(STEPS)}")
        self.done = self._plan()
        self.relay = spec.backend == "ddp" and _spans_machines(run_dir)
        self.resumed_at: str | None = None
        self.results: dict[str, dict[str, float]] = {}

    def _plan(self) -> set[str]:
        """Record the plan (rank 0) and read which steps earlier attempts completed (every rank)."""
        from workbench.store import StepStatus

        if self.index is not None:
            recorded = self.index.plan_steps(self.spec.id, self.steps)
        else:  # another DDP rank: read what rank 0 recorded (a cluster run: its context file)
            from workbench.runs.cluster_context import open_reader

            reader = open_reader(self.spec, self.run_dir, self.attempt)
            try:
                recorded = reader.run_steps(self.spec.id)
            finally:
                reader.close()
        return {s.name for s in recorded if s.status is StepStatus.COMPLETED} if self.attempt > 1 else set()

    def run(self, task: Any, requested: list[str]) -> tuple[bool, bool]:
        """Perform the steps not done yet. Returns (stopped, whether fit ran in this attempt)."""
        fit_ran = False
        weights_ready = False
        for name in self.steps:
            if name in self.done:
                continue
            if self.resumed_at is None and self.done:
                self.resumed_at = name
            if (requested or task.state.stop_requested) and not (name == "fit" and self.relay):
                return True, fit_ran  # (across machines a rank alone must not skip fit: they agree in it)
            self._mark(name, None)
            try:
                if name == "fit":
                    _restore(task, self.spec, self.attempt, self.run_dir, self.index, self.on_event)
                    task.fit()
                    fit_ran = weights_ready = True
                    if task.state.stopped_early and not task.state.stop_reason and not requested:
                        # The ranks agreed on a stop that another rank was asked for (Ctrl-C on
                        # another machine of an --nnodes run): a stop here too, not an early end.
                        requested.append("stopped: another rank was asked to stop")
                        task.state.stop_reason = requested[0]
                    if task.state.stopped_early and requested:  # (an early stop of the task's own completes fit)
                        self._mark(name, "stopped", task.state.stop_reason)
                        return True, fit_ran
                else:
                    if not weights_ready:
                        self._load_weights(task)
                        weights_ready = True
                    self.results[name] = task.test() if name == "test" else task.evaluate()
            except BaseException as exc:
                self._mark(name, "failed", _one_line(exc))
                raise
            self._mark(name, "completed")
        return False, fit_ran

    def _load_weights(self, task: Any) -> None:
        """The weights a test or evaluate step needs when fit did not run in this attempt: the
        end-of-fit checkpoint when an earlier attempt completed fit, else ``spec.weights``."""
        from workbench.checkpoint_names import checkpoint_folder
        from workbench.errors import WorkbenchError
        from workbench.extensions.checkpoint import load_latest

        if "fit" in self.done:
            found = load_latest(checkpoint_folder(self.run_dir), self.on_event)
            if found is None:
                raise WorkbenchError("fit was completed but none of its checkpoints loads; launch the run again")
            path, checkpoint = found
            task.restore(checkpoint)
            if self.index is not None:
                self.index.add_event(self.spec.id, "restored", f"weights of {path.name} (fit was complete): "
                                     f"step {task.state.step}", {"checkpoint": path.name, "step": task.state.step})
        elif self.spec.weights:
            task.load_weights(self.spec.weights)
            if self.index is not None:
                self.index.add_event(self.spec.id, "weights", f"loaded {Path(self.spec.weights).name}: "
                                     f"step {task.state.step}", {"path": self.spec.weights, "step": task.state.step})
        else:
            raise WorkbenchError("nothing to test: the run has no fit step and no weights (workbench test RUN "
                                 "tests a run's checkpoint)")

    def _mark(self, name: str, status: str | None, error: str | None = None) -> None:
        if self.index is None:
            return
        if status is None:
            self.index.start_step(self.spec.id, name, self.attempt)
        else:
            self.index.end_step(self.spec.id, name, status, error)

    def summary(self, task: Any) -> str:
        """One line for the run's final event."""
        parts = [f"after {task.state.step} steps"] if "fit" in self.steps else []
        for name, metrics in self.results.items():
            shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())[:4])
            parts.append(f"{name}: {shown}" if shown else name)
        return "; ".join(parts) or "done"


def _spans_machines(run_dir: Path) -> bool:
    from workbench.runs.cluster_nodes import spans_machines

    return spans_machines(run_dir)


class _StopRelay:
    """For a DDP run across machines, hands a stop signal to the training loop at the end
    of a batch, just before the ranks agree on stopping.

    A signal handler that set the task's stop flag at once could set it on one rank after
    that batch's agreement (the all-reduce of the flags) and before the loop reads it: that
    rank alone would leave the loop and the others would wait for it forever (seen: one
    hang in two runs when only rank 1 was signalled). Set in ``after_batch``, the flag is
    in that batch's agreement, so every rank stops after the same batch — the batch the
    signal arrived in — also when only some ranks were signalled (Ctrl-C on one machine of
    an ``--nnodes`` run, where only that machine's ranks get it). On one machine every rank
    gets the stop at once and the flag is set at once, as extensions may wait for it.
    """

    def __init__(self, requested: list[str]) -> None:
        self.requested = requested

    def after_batch(self, task: Any) -> None:
        """Pass a pending stop request to the loop."""
        if self.requested and not task.state.stop_requested:
            task.request_stop(self.requested[0])


def _numerics(spec: Any, run_dir: Path, attempt: int, index: Any) -> None:
    """Apply deterministic mode and the thread counts the supervisor handed over (before the
    task builds anything); rank 0 records them (``workbench.runs.numerics``)."""
    from dataclasses import asdict

    from workbench.core.numerics import apply_numerics, describe_numerics
    from workbench.runs.numerics import NumericsSettings, record_numerics

    settings = NumericsSettings.from_env(os.environ, default_deterministic=spec.deterministic)
    notes = apply_numerics(settings.deterministic, settings.threads, settings.interop_threads)
    if index is not None:
        record = {**describe_numerics(), "attempt": attempt, "settings": asdict(settings), "notes": notes}
        record_numerics(index, spec.id, run_dir, attempt, record)


def _one_line(exc: BaseException) -> str:
    from workbench.errors import WorkbenchError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, WorkbenchError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Train the run in ``argv[0]``; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    # The stop signals are caught before anything else: Slurm may send its warning (SIGUSR1,
    # whose default action kills) or a preemption's SIGTERM while this process is still
    # starting — waiting for the trainer lock or for its context.json — and such a stop must
    # end the attempt 'stopped' (requeued after the warning), not kill it.
    requested: list[str] = []
    task: Any = None
    relay = False

    def on_signal(signum: int, frame: Any) -> None:
        reason = f"stopped by {signal.Signals(signum).name}"
        requested.append(reason)
        if task is not None and not relay:  # across machines: at the batch's end (_StopRelay)
            task.request_stop(reason)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Slurm's time-limit or preemption warning (--signal=B:USR1@lead): a graceful stop too,
    # after which rank 0 requeues the job (workbench.runs.cluster_requeue).
    signal.signal(signal.SIGUSR1, on_signal)
    run_dir = Path(args[0]).resolve()
    from workbench.runs.artifacts import record_artifacts
    from workbench.runs.spec import read_spec
    from workbench.store import MetricWriter, RunIndex

    spec = read_spec(run_dir)
    rank = int(os.environ.get("RANK", "0"))
    main_rank = rank == 0
    lock = None
    if main_rank:
        # One trainer per run: the lock dies with this process, whatever kills it.
        try:
            lock = FileLock(run_dir / TRAINER_LOCK).acquire(wait=2.0)
        except LockHeld:
            print(f"error: another training process already trains run {spec.id} "
                  f"({run_dir / TRAINER_LOCK} is held); this one does not start", file=sys.stderr, flush=True)
            return 3
    sink = os.environ.get("WORKBENCH_SINK") or getattr(spec, "sink", "index")
    journal = None
    if not main_rank:
        index = None
    elif sink == "journal":
        # Everything rank 0 records goes to the run folder's journal; the supervisor ingests
        # it. Reads (the row, earlier attempts' points and steps) still come from the index.
        from workbench.store.journal import JOURNAL_FILE, Journal, JournalIndex

        journal = Journal(run_dir / JOURNAL_FILE, spec.id)
        # A cluster run's reads come from attempts/<n>/context.json (the node never opens
        # SQLite); a local one's from the index (workbench.runs.cluster_context).
        from workbench.runs.cluster_context import open_reader

        index = JournalIndex(journal, open_reader(spec, run_dir, int(os.environ.get("WORKBENCH_ATTEMPT") or 1)))
    else:
        index = RunIndex(spec.index)
    # The supervisor tells every rank which attempt this is; rank 0 also reads it below.
    attempt = int(os.environ.get("WORKBENCH_ATTEMPT") or 1)
    from workbench.runs.cluster_nodes import spans_machines

    relay = spec.backend == "ddp" and spans_machines(run_dir)

    if index is not None:
        run = index.get_run(spec.id)
        attempt = run.attempt if run is not None else attempt
        if journal is not None:
            index.attempt = attempt
        now = time.time()
        started = run.started_at if run is not None and run.started_at else now
        index.update_run(spec.id, status="running", started_at=started,
                         heartbeat_at=now, pid=os.getpid(), host=socket.gethostname(),
                         ended_at=None, exit_code=None, signal=None, error=None, traceback=None)
        index.add_event(spec.id, "started", f"attempt {attempt}, pid {os.getpid()}")
        if journal is None or isinstance(index.reader, RunIndex):  # a cluster's watcher signals the job
            _watch_stop_requests(spec.index, spec.id, lambda reason: (requested.append(reason),
                                                                       task is not None and task.request_stop(reason)))
    started_at = time.time()
    writer = None
    backend = None
    try:
        _numerics(spec, run_dir, attempt, index)
        from workbench.core.backends import make_backend
        from workbench.extensions import assemble_task

        task_cls = import_task(Path(spec.code_dir), spec.task_file, spec.task_module, spec.task)
        if journal is not None:
            from workbench.store.journal import JournalWriter

            writer = JournalWriter(journal, attempt=attempt)
            if (run_dir / "cluster.json").is_file():  # no supervisor beside it: rank 0 samples sys/*
                from workbench.runs.cluster_sampler import start_job_sampler

                start_job_sampler(writer, spec.backend)
        elif main_rank:
            writer = MetricWriter(spec.index, spec.id, attempt=attempt)
        backend = make_backend(spec.backend)
        on_event = _event_writer(index, spec.id)
        task = assemble_task(task_cls, spec.config, device=spec.device, precision=spec.precision,
                             backend=backend, run_dir=run_dir, sink=writer,
                             reporter=IndexReporter(writer, _first_epoch_check(index, spec.id, writer, journal))
                             if writer is not None else None,
                             checkpoints=True, on_event=on_event)
        if relay:
            task.attach(_StopRelay(requested))
        elif requested:
            task.request_stop(requested[0])
        pipeline = _Pipeline(spec, attempt, run_dir, index, on_event)
        stopped, fit_ran = pipeline.run(task, requested)
        if writer is not None:
            state = task.state  # the epoch shown is 1-based, as the progress reports are
            writer.progress(state.step, state.total_steps, min(state.epoch + 1, max(state.max_epochs, 1)))
            writer.close()
        if index is not None:
            record_artifacts(index, spec.id, run_dir)
            status = "stopped" if stopped else "completed"
            if stopped:  # a sweep's trial stopped for being poor ends pruned, never resumed
                row = index.get_run(spec.id)
                if row is not None and row.stop_reason == "pruned":
                    status = "pruned"
            message = task.state.stop_reason if task.state.stopped_early else (requested[0] if stopped else "")
            # The replay check is recorded before the final status: whoever sees the run
            # ended (`resume --wait`, the app) finds the attempt's whole record.
            if fit_ran:
                _check_replay(index, spec.id, attempt)
            elif attempt > 1:
                index.add_event(spec.id, "replay", f"nothing to replay: fit was complete, attempt {attempt} "
                                f"resumed at step {pipeline.resumed_at or '-'}",
                                {"matched": 0, "compared": 0, "first_divergence": None})
            ended = time.time()
            write_outcome(run_dir, Outcome(attempt, RunStatus(status), ended, 0, None, message,
                                           task.state.step, started_at))
            index.update_run(spec.id, status=status, ended_at=ended, exit_code=0,
                             step=task.state.step, total_steps=task.state.total_steps)
            index.add_event(spec.id, status, message or pipeline.summary(task))
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure is reported, then re-raised as exit 1
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, flush=True)
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass
        if index is not None:
            try:
                record_artifacts(index, spec.id, run_dir)
            except Exception:  # noqa: BLE001 - the failure itself matters more
                pass
            ended = time.time()
            step = task.state.step if task is not None else None
            if spec.backend == "ddp":
                # Another rank may have died first (this one then fails with a "connection
                # reset"): the supervisor reads torchrun's report and decides the status.
                index.update_run(spec.id, error=_one_line(exc), traceback=tb)
                return 1
            try:
                _check_replay(index, spec.id, attempt)  # before the status, as on success
            except Exception:  # noqa: BLE001
                pass
            try:
                write_outcome(run_dir, Outcome(attempt, RunStatus.FAILED, ended, 1, None, _one_line(exc),
                                               step, started_at))
            except OSError:
                pass
            index.update_run(spec.id, status="failed", ended_at=ended, exit_code=1,
                             error=_one_line(exc), traceback=tb)
            index.add_event(spec.id, "failed", _one_line(exc))
        return 1
    finally:
        # The attempt is concluded: a stop signal that arrives now (the supervisor delivers a
        # stop request it saw after this process did) must not kill it on its way out —
        # Python restores the default SIGINT action while it shuts down, and the run would
        # end with exit code -2 after its outcome was written.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        if backend is not None:
            try:
                backend.teardown()
            except Exception:  # noqa: BLE001
                pass
        if index is not None:
            index.close()  # the journal is complete before the job is requeued
        if main_rank and requested and requested[0] == "stopped by SIGUSR1":
            from workbench.runs.cluster_requeue import requeue_after_warning

            requeue_after_warning(run_dir, attempt)
        if lock is not None:
            lock.release()


def _watch_stop_requests(index_path: str, run_id: str, stop: Any, every: float = 1.0) -> None:
    """Poll the run's row for a stop request in a daemon thread, and ask the task to stop.

    The supervisor delivers a stop request too (SIGINT); this makes a trainer whose
    supervisor died (an orphan) stoppable through the same request in the row.
    """
    import threading

    from workbench.store import RunIndex

    def poll() -> None:
        index = RunIndex(index_path)
        try:
            while True:
                time.sleep(every)
                run = index.get_run(run_id)
                if run is None or not run.status.is_live:
                    return
                if run.stop_requested_at is not None and run.stop_mode is not StopMode.KILL:
                    stop(f"stop requested ({run.stop_reason or 'user'})")
                    return
        except Exception:  # noqa: BLE001 - the watch is a convenience; training goes on
            return
        finally:
            index.close()

    threading.Thread(target=poll, name="workbench-stop-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
