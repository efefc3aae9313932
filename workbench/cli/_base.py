"""What every command shares: the group, the project, the index, ``--json``, run styles."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.store import Run, RunEvent, RunIndex

__all__ = [
    "Group",
    "State",
    "console",
    "json_option",
    "last_event",
    "open_index",
    "pass_state",
    "print_json",
    "resolve",
    "status_text",
]

STATUS_COLOURS = {"queued": "cyan", "running": "blue", "completed": "green", "failed": "red",
                  "stopped": "yellow", "interrupted": "magenta", "pruned": "bright_black"}


class Group(click.Group):
    """A click group that turns a WorkbenchError into one clear line and exit status 2.

    A damaged or unwritable index (an ``sqlite3`` error at query or write time) is one
    line too, naming the file and what to do.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except sqlite3.Error as exc:
            from workbench.store.errors import damaged_index_advice

            state = ctx.find_object(State)
            where = state.index_path_text() if state is not None else "the run index"
            click.echo(f"error: the run index {where} cannot be used: {exc}; {damaged_index_advice(where)}",
                       err=True)
            ctx.exit(2)


class State:
    """What every command needs: the project, found once, lazily."""

    def __init__(self, project_dir: Path | None) -> None:
        self.project_dir = project_dir
        self._project: Project | None = None

    @property
    def project(self) -> Project:
        """The project (``workbench.toml`` loaded), or a one-line error."""
        if self._project is None:
            from workbench.project import ProjectNotFound, find_project_root, load_project

            start = self.project_dir or Path.cwd()
            if self.project_dir is not None and (start / "workbench.toml").is_dir():
                raise ProjectNotFound(f"{start / 'workbench.toml'} is not a file (a folder?); "
                                      "workbench.toml must be a TOML file")
            if self.project_dir is not None and not (start / "workbench.toml").is_file():
                raise ProjectNotFound(
                    f"{start} has no workbench.toml; point --project at a project folder "
                    "or create workbench.toml there"
                )
            self._project = load_project(find_project_root(start))
        return self._project

    def index_path_text(self) -> str:
        """The index file's path, for messages (never raises)."""
        try:
            return str(self.project.index_path)
        except Exception:  # noqa: BLE001 - only for an error message
            return "the run index"


pass_state = click.make_pass_decorator(State)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The shared ``--json`` flag: a stable, documented shape instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (shapes in docs/cli.md).")(fn)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout."""
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def open_index(project: Project) -> RunIndex:
    """The project's run index (opened; close it, or use it in a ``with``)."""
    from workbench.store import RunIndex

    return RunIndex(project.index_path)


def resolve(index: RunIndex, ref: str) -> Run:
    """Reconcile, then find the run the user means (id, id prefix or name)."""
    from workbench.runs import reconcile

    reconcile(index)
    return index.resolve_run(ref)


def sweep_named(index: RunIndex, ref: str) -> Any:
    """The sweep ``ref`` names when it names no run, else None (``show``/``stop``/``resume``
    take a sweep too). A reference that names a run and a sweep is refused, not guessed.

    Raises:
        WorkbenchError: ``ref`` names both a run and a sweep.
    """
    from workbench.store import RunNotFound
    from workbench.store._sweeps import SweepNotFound

    try:
        run = index.resolve_run(ref)
    except RunNotFound:
        run = None
    try:
        sweep = index.resolve_sweep(ref)
    except SweepNotFound:
        return None
    if run is not None:
        raise WorkbenchError(f"{ref!r} names run {run.id} and sweep {sweep.id}; give more of the id you mean")
    return sweep


def status_text(status: object) -> str:
    """A status, coloured for the terminal."""
    text = str(status)
    return click.style(text, fg=STATUS_COLOURS.get(text), bold=text in ("failed", "running"))


def console() -> Any:
    """A rich console for tables on stdout; a pipe gets full rows (rich would wrap at 80)."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 250, soft_wrap=False, highlight=False)


def last_event(index: RunIndex, run_id: str, kind: str) -> RunEvent | None:
    """The run's most recent event of ``kind``."""
    for event in reversed(index.events(run_id)):
        if event.kind == kind:
            return event
    return None


def exit_unless_completed(run: Run) -> None:
    """Exit 1 when ``run`` did not complete (``--wait`` / ``--follow``)."""
    from workbench.store import RunStatus

    if run.status is not RunStatus.COMPLETED:
        sys.exit(1)
