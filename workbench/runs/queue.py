"""The run queue: runs that wait as ``queued`` until a slot is free.

A run is queued with :func:`enqueue` (``workbench run --queue``, sweeps): it gets the whole
launch check, its folder, snapshot and ``run.toml`` at once, exactly as a launch that does
not start — then it waits. One small queue runner per project
(:mod:`workbench.runs.queue_runner`, started on demand by :func:`ensure_queue_runner`)
starts waiting runs while slots are free and exits when none waits. No daemon to start, no
process per waiting run.

Limits (all at once): per project (``[queue] max_running``, default none), per sweep
(``sweeps.parallel``) and per GPU: a single-process run on ``cuda`` (or ``auto`` where the
default device is a GPU) gets a free GPU of its own, recorded in ``assigned_device`` and
written into its ``run.toml`` before it starts. DDP runs are not given GPUs by the queue
(they count against the project and sweep limits only). A plain ``workbench run`` starts at
once, bypassing the queue, but holds a slot from its start: the queue counts it.

Order: priority (higher first), then the time queued (FIFO). See DESIGN.md, "Who owns a
run": a waiting run's owner is the queue; a stop request ends it ``stopped`` without
starting it.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.runs._queue_start import QUEUE_LOCK, QUEUE_LOG, queue_runner_alive, start_queue_runner
from workbench.runs.launch import LaunchRequest, launch
from workbench.store import Run, RunIndex
from workbench.store._queue import SlotUsage, wait_reason

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.snapshot import Snapshot

__all__ = [
    "QUEUE_LOCK",
    "QUEUE_LOG",
    "enqueue",
    "ensure_queue_runner",
    "gpus_for",
    "move_to_top",
    "queue_runner_alive",
    "reason_now",
    "set_priority",
    "slot_usage",
]

#: The reason a waiting run shows while a slot is free and the runner has not looked yet.
NEXT_UP = "waiting for the queue runner"


def enqueue(project: Project, request: LaunchRequest, *, index: RunIndex, sweep_id: str | None = None,
            priority: int = 0, snapshot: Snapshot | None = None) -> Run:
    """Queue a run: the whole launch check, its folder and snapshot now; its start later.

    The run is created exactly as ``launch(..., start=False)`` creates it (status
    ``queued``), then marked as waiting in the queue (``queued_at``, ``priority``,
    ``sweep_id`` and why it waits), and the project's queue runner is started if none
    runs. Returns at once.

    Args:
        project: The project.
        request: What to run (refused here, before anything is written, if bad).
        index: The project's open run index.
        sweep_id: The sweep the run belongs to (its ``parallel`` limits it).
        priority: Higher starts first; equal priorities start in the order queued.
        snapshot: An existing code snapshot to run (a sweep's), passed to ``launch``.

    Returns:
        The queued run.

    Raises:
        WorkbenchError: The launch check refused the request (nothing written).
    """
    script = project.script(request.task)
    if script is not None and _has_secrets(script):
        raise WorkbenchError(f"script {request.task} has secret params: they live only in the launching "
                             "process, so it cannot wait in the queue; launch it without --queue")
    kwargs: dict[str, Any] = {}
    if snapshot is not None:
        if "snapshot" not in inspect.signature(launch).parameters:
            raise WorkbenchError("this workbench cannot run a shared snapshot yet")
        kwargs["snapshot"] = snapshot
    run = launch(project, request, index=index, start=False, **kwargs)
    with index.write():
        index.update_run(run.id, queued_at=time.time(), priority=int(priority), sweep_id=sweep_id)
        run = index.get_run(run.id) or run
        index.update_run(run.id, status_reason=reason_now(project, index, run))
        index.add_event(run.id, "queued", f"queued (priority {int(priority)})",
                        {"priority": int(priority), "sweep": sweep_id})
    ensure_queue_runner(project)
    return index.get_run(run.id) or run


def _has_secrets(script: Any) -> bool:
    return bool(getattr(script, "secret", ()))


def ensure_queue_runner(project: Project) -> int | None:
    """Start the project's queue runner unless one holds the queue lock.

    The runner is ``python -m workbench.runs.queue_runner PROJECT_ROOT`` in its own session
    (closing the terminal never stops it), writing to ``.workbench/queue.log``. When two
    callers race, both may start one: the second finds the lock held and exits at once.

    Returns:
        The new runner's pid, or ``None`` when one was already running.
    """
    return start_queue_runner(project.root, project.state_dir)


def gpus_for(run: Run, probe: dict[str, Any] | None) -> list[str]:
    """The GPUs a waiting run may be given, in preference order (empty: it needs none).

    Args:
        run: The run (its ``device`` and ``backend``).
        probe: The device probe's answer (``{"devices": [...], "default": ...}``), or
            ``None`` when not known (then only an explicit ``cuda:N`` needs a GPU).

    Returns:
        ``["cuda:N"]`` for an explicit GPU; every GPU of the probe for ``cuda`` (or
        ``auto`` where the default device is a GPU) with the single backend; else ``[]``.
    """
    device = run.device or "auto"
    if device.startswith("cuda:"):
        return [device]
    if run.backend == "ddp" or probe is None:
        return []
    devices = [d for d in probe.get("devices", ()) if str(d).startswith("cuda:")]
    if device == "cuda" or (device == "auto" and str(probe.get("default", "")).startswith("cuda")):
        return devices
    return []


def slot_usage(index: RunIndex) -> SlotUsage:
    """Who holds this machine's slots now: runs submitted to a cluster train there, not here,
    and hold none (neither a place under ``max_running`` nor a GPU of this machine)."""
    from workbench.runs.cluster_launch import is_cluster_run

    return index.slot_usage(elsewhere=is_cluster_run)


def reason_now(project: Project, index: RunIndex, run: Run, probe: dict[str, Any] | None = None) -> str:
    """Why ``run`` waits now (a limit that is full), or :data:`NEXT_UP` when a slot is free."""
    if probe is None and (run.device or "auto") in ("cuda", "auto") and run.backend != "ddp":
        probe = _cached_probe(project)
    reason, _ = wait_reason(slot_usage(index), run, max_running=project.max_running,
                            sweep_parallel=index.sweep_parallel(run.sweep_id), gpus=gpus_for(run, probe))
    return reason or NEXT_UP


def _cached_probe(project: Project) -> dict[str, Any] | None:
    from workbench.runs.probe import ProbeError, probe_devices

    try:
        return probe_devices(project.state_dir)
    except ProbeError:
        return None


def _waiting(index: RunIndex, ref: str) -> Run:
    from workbench.store.errors import RunNotFound

    try:
        run = index.resolve_run(ref)
    except RunNotFound:
        raise WorkbenchError(f"no run matches {ref!r}") from None
    if run.queued_at is None or run.status.value != "queued" or run.supervisor_pid is not None:
        raise WorkbenchError(f"run {run.id} is {run.status}, not waiting in the queue; only a waiting run "
                             "can be reordered (workbench queue lists them)")
    return run


def move_to_top(index: RunIndex, ref: str) -> tuple[Run, int]:
    """Put a waiting run first in the queue (a priority above every other waiting run's).

    Returns:
        The run and its new priority.

    Raises:
        WorkbenchError: No such run, or it does not wait in the queue.
    """
    run = _waiting(index, ref)
    priority = index.move_to_top(run.id)
    if priority is None:
        raise WorkbenchError(f"run {run.id} left the queue meanwhile (it started or was stopped)")
    return index.get_run(run.id) or run, priority


def set_priority(index: RunIndex, ref: str, priority: int) -> Run:
    """Give a waiting run a priority (higher starts first).

    Raises:
        WorkbenchError: No such run, or it does not wait in the queue.
    """
    run = _waiting(index, ref)
    if not index.set_priority(run.id, priority):
        raise WorkbenchError(f"run {run.id} left the queue meanwhile (it started or was stopped)")
    return index.get_run(run.id) or run


def queue_position(runs: Sequence[Run]) -> dict[str, int]:
    """Each waiting run's place in the order (1 = next), by id."""
    return {run.id: place for place, run in enumerate(runs, start=1)}
