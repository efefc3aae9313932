"""``workbench init``: make an existing repository a workbench project (nothing of it is run)."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli._base import State, pass_state

__all__ = ["COMMANDS"]


@click.command("init")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option("--template", type=click.Choice(["task"]),
              help="Also write a template: task writes tasks/my_task.py, a working Task subclass.")
@click.option("--force", is_flag=True, help="Overwrite an existing workbench.toml (and template file).")
@pass_state
def init_cmd(state: State, folder: Path | None, template: str | None, force: bool) -> None:
    """Write a commented workbench.toml for FOLDER (default: --project, or here).

    Finds task files and argparse scripts statically (nothing is imported or run),
    proposes a [scripts.NAME] table per script, and adds .workbench/ to .gitignore.
    """
    from workbench.project.init import init_project

    root = folder or state.project_dir or Path.cwd()
    result = init_project(root, template=template, force=force)
    tasks = f"{len(result.task_files)} task file(s)" if result.task_files else "no task files yet"
    click.echo(f"wrote {result.file} ({tasks}; tasks = {', '.join(result.task_globs)})")
    for script in result.scripts:
        state_text = f" (commented out: {script.problem})" if script.problem else ""
        click.echo(f"  [scripts.{script.name}]  {script.path}{state_text}")
    if result.truncated:
        click.echo("  (a large tree: only the first 3000 Python files were looked at)")
    if result.template is not None:
        click.echo(f"wrote {result.template}")
    if result.gitignore != "present":
        click.echo(f"{'created' if result.gitignore == 'created' else 'updated'} .gitignore: .workbench/ is ignored")
    click.echo("next: workbench tasks, then workbench run NAME (edit workbench.toml to taste)")


COMMANDS = [init_cmd]
