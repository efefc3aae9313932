"""The run queue: ``workbench queue`` lists the waiting runs; ``queue top`` and ``queue
priority`` reorder them (see :mod:`workbench.runs.queue`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from workbench.cli._base import State, console, json_option, open_index, pass_state, print_json

if TYPE_CHECKING:
    from workbench.store import Run

__all__ = ["COMMANDS"]


def _record(run: Run, place: int) -> dict[str, Any]:
    from workbench.runs.present import iso

    return {"position": place, "id": run.id, "name": run.name, "task": run.task, "priority": run.priority,
            "queued_at": iso(run.queued_at), "reason": run.status_reason, "sweep": run.sweep_id,
            "device": run.device}


@click.group("queue", invoke_without_command=True)
@json_option
@pass_state
@click.pass_context
def queue_group(ctx: click.Context, state: State, as_json: bool) -> None:
    """List the runs waiting in the run queue, next first, with why they wait."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from workbench.runs import reconcile
    from workbench.runs.present import when
    from workbench.runs.queue import queue_runner_alive, slot_usage

    project = state.project
    with open_index(project) as index:
        reconcile(index)  # also brings back a queue runner that died
        runs = index.queued_runs()
        usage = slot_usage(index)
    if as_json:
        print_json([_record(run, place) for place, run in enumerate(runs, start=1)])
        return
    limit = f" of {project.max_running}" if project.max_running is not None else ""
    runner = "running" if queue_runner_alive(project.state_dir) else "not running"
    click.echo(f"{len(runs)} run(s) waiting; {usage.running}{limit} slot(s) in use; queue runner {runner}")
    if not runs:
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("#", "ID", "NAME", "TASK", "PRIORITY", "QUEUED", "WHY IT WAITS"):
        table.add_column(column, no_wrap=column != "WHY IT WAITS")
    for place, run in enumerate(runs, start=1):
        table.add_row(str(place), run.id, run.name or "—", run.task or "—", str(run.priority),
                      when(run.queued_at), run.status_reason or "—")
    console().print(table)


@queue_group.command("top")
@click.argument("run")
@pass_state
def top_cmd(state: State, run: str) -> None:
    """Put RUN first in the queue (a priority above every other waiting run's)."""
    from workbench.runs import reconcile
    from workbench.runs.queue import move_to_top

    with open_index(state.project) as index:
        reconcile(index)
        moved, priority = move_to_top(index, run)
    click.echo(f"run {moved.id} is next in the queue (priority {priority})")


@queue_group.command("priority", context_settings={"ignore_unknown_options": True})
@click.argument("run")
@click.argument("priority", type=int)
@pass_state
def priority_cmd(state: State, run: str, priority: int) -> None:
    """Give RUN a PRIORITY: higher starts first; equal priorities start in the order queued."""
    from workbench.runs import reconcile
    from workbench.runs.queue import set_priority

    with open_index(state.project) as index:
        reconcile(index)
        changed = set_priority(index, run, priority)
        place = next((i for i, r in enumerate(index.queued_runs(), start=1) if r.id == changed.id), None)
    click.echo(f"run {changed.id} has priority {priority}" + (f" (#{place} in the queue)" if place else ""))


COMMANDS = [queue_group]
