"""``workbench test`` and ``workbench eval``: test or evaluate one of a run's checkpoints."""

from __future__ import annotations

from typing import Any

import click

from workbench.cli._base import State, exit_unless_completed, json_option, open_index, pass_state, print_json, resolve
from workbench.cli._follow import follow_run, print_outcome, wait_run

__all__ = ["COMMANDS"]


def _options(fn: Any) -> Any:
    for option in reversed([
        click.argument("run"),
        click.option("--checkpoint", default="last", show_default=True, metavar="last|best|step-N",
                     help="Which checkpoint: the newest (last), best.pt (best), or the one at step N."),
        click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Change an eval-time field (the task's eval_fields); the value is a TOML literal."),
        click.option("--follow", is_flag=True, help="Show progress until it ends (Ctrl-C detaches)."),
        click.option("--wait", is_flag=True, help="Wait for the end and print its metrics; exit 0 only if it completed."),
        json_option,
        pass_state,
    ]):
        fn = option(fn)
    return fn


def _start(state: State, verb: str, run: str, checkpoint: str, overrides: tuple[str, ...], follow: bool,
           wait: bool, as_json: bool) -> None:
    from workbench.runs.evaluate import evaluate_run
    from workbench.runs.present import run_record

    project = state.project
    with open_index(project) as index:
        parent = resolve(index, run)
        evaluation = evaluate_run(project, index, parent, verb, checkpoint=checkpoint, overrides=overrides)
        if not as_json:
            event = index.events(evaluation.id)[0] if index.events(evaluation.id) else None
            what = event.message if event is not None else f"{verb} of run {parent.id}"
            name = f" ({evaluation.name})" if evaluation.name else ""
            click.echo(f"started evaluation {evaluation.id}{name}: {what}", err=follow)
        if follow:
            evaluation = follow_run(index, evaluation.id)
        elif wait:
            evaluation = wait_run(index, evaluation.id)
        if as_json:
            print_json(run_record(evaluation, index.last_metrics(evaluation.id)))
        elif follow or wait:
            print_outcome(index, evaluation)
        else:
            click.echo(f"  watch it: workbench logs --follow {evaluation.id}  ·  workbench show {parent.id}")
    if follow or wait:
        exit_unless_completed(evaluation)


@click.command("test")
@_options
def test_cmd(state: State, run: str, checkpoint: str, overrides: tuple[str, ...], follow: bool, wait: bool,
             as_json: bool) -> None:
    """Run the task's test on one of RUN's checkpoints, as an evaluation recorded under RUN
    (only the task's eval-time fields may change: -s threshold=0.7)."""
    _start(state, "test", run, checkpoint, overrides, follow, wait, as_json)


@click.command("eval")
@_options
def eval_cmd(state: State, run: str, checkpoint: str, overrides: tuple[str, ...], follow: bool, wait: bool,
             as_json: bool) -> None:
    """Run the task's evaluate (validation) on one of RUN's checkpoints, as an evaluation
    recorded under RUN (only the task's eval-time fields may change)."""
    _start(state, "eval", run, checkpoint, overrides, follow, wait, as_json)


COMMANDS = [test_cmd, eval_cmd]
