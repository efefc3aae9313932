"""``workbench tasks``: the tasks a project defines (found statically), and its scripts
(``[scripts.NAME]`` in ``workbench.toml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from workbench.cli._base import State, json_option, pass_state, print_json

if TYPE_CHECKING:
    from workbench.project import ConfigField, Project, TaskInfo

__all__ = ["COMMANDS"]


@click.command("tasks")
@json_option
@pass_state
def tasks_cmd(state: State, as_json: bool) -> None:
    """List the tasks the project defines (found statically; nothing is imported) and its scripts."""
    from workbench.project import discover

    project = state.project
    found = discover(project)
    if as_json:
        print_json({"project": project.name, **found.to_dict()})
        return
    globs = ", ".join(project.task_globs)
    scripts = [t for t in found.tasks if t.kind == "script"]
    count = len(found.launchable) - len(scripts)
    also = f", {len(scripts)} script(s) in {project.file.name}" if scripts else ""
    click.echo(f"{project.name}: {count} task(s) in {len(found.files)} file(s) ({globs}){also}")
    for task in found.tasks:
        if task.kind == "script":
            _script(project, task)
            continue
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
            click.echo(f"    {field.name}: {field.type}{default}{_range_text(field)}")
    if found.errors:
        click.echo(click.style(f"\n{len(found.errors)} problem(s):", fg="red"))
        for error in found.errors:
            click.echo(f"  {error}")


def _script(project: Project, task: TaskInfo) -> None:
    """A script's entry: its name marked as a script, its summary, command and params."""
    script = project.script(task.name)
    click.echo(f"\n{click.style(task.name, bold=True)}{click.style(' (script)', fg='cyan')}  "
               f"{click.style(task.location, dim=True)}")
    if task.summary:
        click.echo(f"  {task.summary}")
    click.echo(f"  command: {task.doc}")
    if script is not None and script.resumes:
        click.echo(click.style(f"  resume: {' '.join(script.resume)} (newest of {script.checkpoints})", dim=True))
    for field in task.config:
        secret = click.style("  (secret)", fg="yellow") if script is not None and field.name in script.secret else ""
        default = "***" if secret else repr(field.default)
        click.echo(f"    {field.name}: {field.type} = {default}{secret}")


def _range_text(field: ConfigField) -> str:
    """``  (>= 1)`` for a declared range, ``  (> 0 and finite; the trainer's)`` for the trainer's."""
    if field.range is None:
        return ""
    whose = "; the trainer's" if field.range_source == "trainer" else ""
    return click.style(f"  ({field.range}{whose})", dim=True)


COMMANDS = [tasks_cmd]
