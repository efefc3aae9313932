"""The ``workbench`` command: a thin click layer over plain functions.

It never imports torch, textual or the user's code (``workbench --help`` answers at
once); bad input is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from workbench.errors import WorkbenchError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """A click group that turns a WorkbenchError into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


class _State:
    """What every command needs: the project, found once, lazily."""

    def __init__(self, project_dir: Path | None) -> None:
        self.project_dir = project_dir
        self._project: Any = None

    @property
    def project(self) -> Any:
        """The project (``workbench.toml`` loaded), or a one-line error."""
        if self._project is None:
            from workbench.project import find_project_root, load_project

            start = self.project_dir or Path.cwd()
            if self.project_dir is not None and not (start / "workbench.toml").is_file():
                from workbench.project import ProjectNotFound

                raise ProjectNotFound(
                    f"{start} has no workbench.toml; point --project at a project folder "
                    "or create workbench.toml there"
                )
            self._project = load_project(find_project_root(start))
        return self._project


pass_state = click.make_pass_decorator(_State)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The shared ``--json`` flag: a stable, documented shape instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (shapes in docs/cli.md).")(fn)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


@click.group(cls=_Group, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The project folder (default: the nearest parent with workbench.toml).")
@click.version_option(package_name="workbench", prog_name="workbench")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None) -> None:
    """Workbench: launch, watch, compare and resume PyTorch runs from the terminal."""
    ctx.obj = _State(project_dir.resolve() if project_dir else None)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command("tasks")
@json_option
@pass_state
def tasks_cmd(state: _State, as_json: bool) -> None:
    """List the tasks the project defines (found statically; nothing is imported)."""
    from workbench.project import discover

    project = state.project
    found = discover(project)
    if as_json:
        _print_json({"project": project.name, **found.to_dict()})
        return
    globs = ", ".join(project.task_globs)
    click.echo(f"{project.name}: {len(found.launchable)} task(s) in {len(found.files)} file(s) ({globs})")
    for task in found.tasks:
        label = click.style(task.name, bold=True)
        if task.abstract:
            label += click.style(" (framework: not launchable)", dim=True)
        click.echo(f"\n{label}  {click.style(task.location, dim=True)}")
        if task.summary:
            click.echo(f"  {task.summary}")
        if task.bases and task.bases not in (("Task",), ("workbench.Task",)):
            click.echo(f"  builds on: {', '.join(task.bases)}")
        for field in task.config:
            default = (f" = {field.default!r}" if not field.default_source else f" = {field.default_source}") \
                if field.has_default else click.style(" (required)", fg="yellow")
            click.echo(f"    {field.name}: {field.type}{default}")
    if found.errors:
        click.echo(click.style(f"\n{len(found.errors)} problem(s):", fg="red"))
        for error in found.errors:
            click.echo(f"  {error}")


def main(argv: list[str] | None = None) -> None:
    """The console script's entry point."""
    cli.main(args=argv, prog_name="workbench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
