"""The run index itself: ``workbench index rebuild``."""

from __future__ import annotations

import sys

import click

from workbench.cli._base import State, open_index, pass_state, status_text

__all__ = ["COMMANDS"]


@click.group("index")
def index_group() -> None:
    """The run index: rebuild it from the run folders after it was lost or emptied."""


@index_group.command("rebuild")
@pass_state
def rebuild_cmd(state: State) -> None:
    """Put back in the index every run whose folder has no row (existing rows stay)."""
    from workbench.runs.rebuild import LOST_WITH_THE_INDEX, rebuild_index

    project = state.project
    with open_index(project) as index:
        report = rebuild_index(project, index)
    for run in report.rebuilt:
        step = run.checkpoint_step
        if run.status.is_resumable:
            where = f"resumable from step {step}" if step is not None else "no checkpoint: launch it again"
        else:
            where = f"checkpoint at step {step}" if step is not None else "no checkpoint"
        line = (f"rebuilt {run.id}  {run.name or '—'}  {run.task}  {status_text(run.status)}  "
                f"attempt {run.attempt}  ({where})")
        click.echo(line + (f"; {run.note}" if run.note else ""))
    if report.kept:
        click.echo(f"kept {len(report.kept)} run(s) already in the index")
    for folder, why in report.skipped:
        click.echo(f"skipped {folder}: {why}", err=True)
    if report.rebuilt:
        click.echo(f"{len(report.rebuilt)} run(s) rebuilt; their metric curves and events were in the lost "
                   f"index and cannot be recovered (nor {LOST_WITH_THE_INDEX}); the checkpoints, "
                   "artifacts and code snapshots are intact and `workbench resume` works")
    elif not report.skipped:
        click.echo(f"nothing to rebuild: every run folder in {project.runs_dir} has its row")
    if report.skipped:
        sys.exit(1)


COMMANDS = [index_group]
