"""The ``workbench`` command: a thin click layer over plain functions.

It never imports torch, textual or the user's code (``workbench --help`` answers at
once); bad input is one line on stderr and a non-zero exit. Commands live by concern in
this package's modules; :mod:`workbench.cli.app` is the one door to the terminal app.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.cli._base import Group, State

__all__ = ["cli", "main"]


@click.group(cls=Group, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The project folder (default: the nearest parent with workbench.toml).")
@click.version_option(package_name="workbench", prog_name="workbench")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None) -> None:
    """Workbench: launch, watch, compare and resume PyTorch runs from the terminal."""
    ctx.obj = State(project_dir.resolve() if project_dir else None)
    if ctx.invoked_subcommand is None:
        from workbench.cli.app import open_app

        open_app(ctx.obj)


def main(argv: list[str] | None = None) -> None:
    """The console script's entry point."""
    cli.main(args=argv, prog_name="workbench")


from workbench.cli import app, code, compare, evaluate, export, index, init, queue, runs, sweep, tasks, verify  # noqa: E402  (they register commands)

for _module in (tasks, app, runs, compare, export, code, index, verify, evaluate, init, sweep, queue):
    for _command in _module.COMMANDS:
        cli.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
