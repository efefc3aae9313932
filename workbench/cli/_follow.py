"""Following a run from the terminal: a live progress bar, waiting, tailing its output."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from workbench.cli._base import status_text

if TYPE_CHECKING:
    from workbench.store import Run, RunIndex

__all__ = ["follow_run", "print_outcome", "tail_log", "wait_run"]


def wait_run(index: RunIndex, run_id: str) -> Run:
    """Wait for the run's end; Ctrl-C detaches (the run goes on), as with --follow."""
    from workbench.runs import wait_for

    try:
        return wait_for(index, run_id)
    except KeyboardInterrupt:
        click.echo(f"detached; the run goes on (workbench show {run_id})", err=True)
        sys.exit(130)


def print_outcome(index: RunIndex, run: Run) -> None:
    """One line with the run's final status and headline metrics, and its error."""
    metrics = index.last_metrics(run.id)
    shown = "  ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())
                      if k.startswith(("val/", "train/loss_epoch", "test/")))
    click.echo(f"run {run.id} {status_text(run.status)}" + (f": {shown}" if shown else ""))
    if run.error:
        click.echo(f"  error: {run.error}")


def follow_run(index: RunIndex, run_id: str) -> Run:
    """A live progress bar from the index until the run ends; Ctrl-C detaches."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from workbench.runs import reconcile

    console = Console(stderr=True)
    run = index.get_run(run_id)
    assert run is not None
    bar = Progress(TextColumn("{task.fields[label]}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"), console=console)
    try:
        with bar:
            handle = bar.add_task("run", total=None, label=f"{run.task} {run.status}", metrics="")
            while True:
                reconcile(index)
                current = index.get_run(run_id)
                if current is None:
                    break
                run = current
                metrics = index.last_metrics(run_id)
                shown = "  ".join(f"{k} {metrics[k]:.4g}" for k in ("train/loss", "val/loss") if k in metrics)
                epoch = f" epoch {run.epoch}" if run.epoch else ""
                total = run.total_steps if run.total_steps and run.total_steps > 0 else None
                bar.update(handle, total=total, completed=run.step or 0,
                           label=f"{run.task} {run.status}{epoch}", metrics=shown)
                if not run.status.is_live:
                    break
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print(f"detached; the run goes on (workbench logs --follow {run_id})")
        sys.exit(130)
    return run


def tail_log(index: RunIndex, run: Run, follow: bool) -> None:
    """Print the run's ``output.log``; with ``follow``, keep printing until the run ends.

    The log may be rotated (copy-truncated) while it is followed: a file shorter than
    what was read starts over from its beginning.
    """
    from workbench.runs import reconcile

    path = Path(run.run_dir or "") / "output.log"
    position = 0
    try:
        while True:
            if path.is_file():
                with path.open("rb") as fh:
                    size = fh.seek(0, 2)
                    if size < position:
                        position = 0  # rotated under us
                    fh.seek(position)
                    chunk = fh.read()
                    position += len(chunk)
                if chunk:
                    sys.stdout.write(chunk.decode("utf-8", "replace"))
                    sys.stdout.flush()
            if not follow:
                break
            reconcile(index)
            current = index.get_run(run.id)
            if current is None or not current.status.is_live:
                follow = False  # one more read picks up the last lines
                continue
            time.sleep(0.3)
    except KeyboardInterrupt:
        pass
