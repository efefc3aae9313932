"""Code snapshots and housekeeping: ``diff``, ``checkout``, ``snapshot``, ``gc``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from workbench.cli._base import State, json_option, open_index, pass_state, print_json, resolve
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.runs.housekeeping import GcPlan
    from workbench.store import Run

__all__ = ["COMMANDS"]


@click.command("diff")
@click.argument("run")
@click.argument("other", required=False)
@click.option("--stat", is_flag=True, help="Only a summary of changed files.")
@pass_state
def diff_cmd(state: State, run: str, other: str | None, stat: bool) -> None:
    """The code diff between RUN's snapshot and the working tree, or OTHER's snapshot."""
    from workbench.snapshot import diff

    project = state.project
    with open_index(project) as index:
        a = _snapshot_of(resolve(index, run))
        b = _snapshot_of(resolve(index, other)) if other else None
    colour = sys.stdout.isatty()
    text = diff(project.root, a, b, state_dir=project.state_dir, stat=stat, color=colour,
                max_file_bytes=project.snapshot.max_file_bytes, exclude=project.snapshot.exclude)
    if not text.strip():
        click.echo("no differences")
    elif colour:
        click.echo_via_pager(text, color=True)
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _snapshot_of(run: Run) -> str:
    if not run.snapshot_commit:
        raise WorkbenchError(f"run {run.id} has no code snapshot")
    return run.snapshot_commit


@click.command("checkout")
@click.argument("run")
@click.argument("dest", type=click.Path(path_type=Path))
@pass_state
def checkout_cmd(state: State, run: str, dest: Path) -> None:
    """Write RUN's code (its snapshot) to the folder DEST."""
    from workbench.snapshot import SnapshotRepo

    project = state.project
    with open_index(project) as index:
        commit = _snapshot_of(resolve(index, run))
    repo = SnapshotRepo.open(project.root, project.state_dir)
    repo.checkout(commit, dest)
    click.echo(f"wrote the code of run {run} ({commit[:10]}) to {dest}")


@click.command("snapshot")
@json_option
@pass_state
def snapshot_cmd(state: State, as_json: bool) -> None:
    """Snapshot the working tree now and print the commit a run launched now would record."""
    from workbench.snapshot import take_snapshot

    project = state.project
    snap = take_snapshot(project.root, None, state_dir=project.state_dir,
                         max_file_bytes=project.snapshot.max_file_bytes, exclude=project.snapshot.exclude)
    if as_json:
        print_json(snap.to_dict())
        return
    dirty = " (with uncommitted changes)" if snap.dirty else ""
    click.echo(f"snapshot {snap.commit} of HEAD {(snap.head or 'none')[:10]} on {snap.branch or 'detached HEAD'}{dirty}")
    for path, why in snap.excluded:
        click.echo(f"  left out: {path} ({why})")


@click.command("gc")
@click.option("--yes", is_flag=True, help="Remove without asking.")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--force", is_flag=True,
              help="Remove run folders even when the index looks lost (instead of `index rebuild`).")
@pass_state
def gc_cmd(state: State, yes: bool, dry_run: bool, force: bool) -> None:
    """Remove snapshot refs and run folders whose runs are not in the index (asks first)."""
    from workbench.runs.housekeeping import apply_gc, check_index_not_lost, plan_gc

    project = state.project
    with open_index(project) as index:
        plan = plan_gc(project, index)
        for run_id, why in plan.kept:
            click.echo(f"leaving run folder {run_id}: {why}")
        if plan.empty:
            click.echo("nothing to remove")
            return
        _list_plan(plan)
        if not force:
            check_index_not_lost(plan, project)
        if dry_run:
            return
        if not yes:
            what = f"{len(plan.folders)} run folder(s) and {len(plan.refs)} snapshot ref(s)"
            if not sys.stdin.isatty():
                raise WorkbenchError(f"not removing {what} without confirmation: pass --yes "
                                     "(or --dry-run to only list them)")
            click.confirm(f"remove {what}?", abort=True)
        result = apply_gc(project, index, plan)
    for run_id, why in result.kept:
        click.echo(f"left run folder {run_id}: {why}")
    click.echo(f"removed {len(result.folders)} run folder(s) and {len(result.refs)} snapshot ref(s) of runs "
               "not in the index; git's own gc prunes the commits the refs held")


def _list_plan(plan: GcPlan) -> None:
    from workbench.checkpoint_names import checkpoint_folder, step_files
    from workbench.runs.housekeeping import folder_size
    from workbench.runs.present import human_size

    if plan.folders:
        click.echo("run folders of runs not in the index (with everything in them):")
    for path in plan.folders:
        checkpoints = len(step_files(checkpoint_folder(path)))
        spec = "" if (path / "run.toml").is_file() else ", no run.toml"
        click.echo(f"  {path}  {human_size(folder_size(path))}, {checkpoints} checkpoint(s){spec}")
    if plan.refs:
        click.echo(f"snapshot refs of runs not in the index: {', '.join(plan.refs)}")


COMMANDS = [diff_cmd, checkout_cmd, snapshot_cmd, gc_cmd]
