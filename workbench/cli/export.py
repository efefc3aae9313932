"""``workbench export``: runs, their config, metrics and events to CSV, JSON, JSON Lines,
SQLite or TensorBoard event files (the work is in :mod:`workbench.runs.export`). A sweep's id
or name exports its trials (``--top N``: its N best)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from workbench.cli._base import State, open_index, pass_state

__all__ = ["COMMANDS", "PROGRESS_MIN_POINTS"]

# Spelled out here (not imported) so that `workbench --help` loads nothing heavy; a test
# checks that it matches workbench.runs.export.FORMATS.
_FORMATS = ("csv", "json", "jsonl", "sqlite", "tensorboard")

#: Exports of at least this many points show a progress bar (on a terminal's stderr).
PROGRESS_MIN_POINTS = 100_000


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for a large export to a terminal; nothing otherwise."""
    if total < PROGRESS_MIN_POINTS or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("exporting points"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("export", total=total)
        yield lambda n: bar.advance(task, n)


@click.command("export")
@click.argument("runs", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(_FORMATS), required=True,
              help="csv or tensorboard (a folder); json, jsonl or sqlite (a file).")
@click.option("-o", "--output", required=True, metavar="PATH",
              help="The folder or file to write; - for stdout (json, jsonl).")
@click.option("--where", metavar="FILTER",
              help="Only runs matching FILTER, e.g. 'status:completed tag:sweep lr<0.01'.")
@click.option("--force", is_flag=True, help="Write into a non-empty folder, or replace a file.")
@click.option("--top", type=int, metavar="N",
              help="With a SWEEP: only its N best trials by the sweep's metric (default: all its trials).")
@pass_state
def export_cmd(state: State, runs: tuple[str, ...], fmt: str, output: str, where: str | None,
               force: bool, top: int | None) -> None:
    """Export runs (default: all) with their config, metrics and events; a sweep's id or
    name exports its trials."""
    from workbench.cli.sweep import sweep_trials
    from workbench.runs.export import check_target, count_points, export_runs, select_runs

    to_stdout = output == "-"
    with open_index(state.project) as index:
        check_target(fmt, output, force)
        trial_ids = sweep_trials(index, runs, top, "export")
        chosen = select_runs(index, runs if trial_ids is None else trial_ids, where)
        with _progress(count_points(index, chosen)) as advance:
            # A reader that goes away (`-o - | head`) ends the command quietly: click
            # handles the broken pipe.
            result = export_runs(index, chosen, fmt, output, force=force, progress=advance)
    where_to = "stdout" if to_stdout else str(Path(output))
    what = f"{result.runs} run(s), {result.points} point(s)"
    what += " (events are not written to TensorBoard)" if fmt == "tensorboard" else f" and {result.events} event(s)"
    click.echo(f"exported {what} to {where_to} ({fmt})", err=to_stdout)
    if fmt == "tensorboard":
        click.echo(f"  open them with: tensorboard --logdir {output}")


COMMANDS = [export_cmd]
