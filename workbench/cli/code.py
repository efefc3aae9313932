"""Code snapshots and housekeeping: ``diff``, ``checkout``, ``snapshot``, ``gc``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from workbench.cli._base import State, json_option, open_index, pass_state, print_json, resolve
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
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
@pass_state
def gc_cmd(state: State) -> None:
    """Remove snapshot refs and run folders whose runs were deleted from the index."""
    import shutil

    from workbench.snapshot import gc

    project = state.project
    with open_index(project) as index:
        keep = index.run_ids()
    removed = gc(project.root, keep, state_dir=project.state_dir)
    folders = []
    if project.runs_dir.is_dir():
        for path in project.runs_dir.iterdir():
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path)
                folders.append(path.name)
    click.echo(f"removed {len(removed)} snapshot ref(s) and {len(folders)} run folder(s) of deleted runs; "
               "git's own gc prunes the commits they held")


COMMANDS = [diff_cmd, checkout_cmd, snapshot_cmd, gc_cmd]
