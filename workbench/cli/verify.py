"""``workbench verify``: replay a run from a checkpoint and prove it resumes exactly."""

from __future__ import annotations

import sys

import click

from workbench.cli._base import State, json_option, open_index, pass_state, print_json, resolve

__all__ = ["COMMANDS"]


@click.command("verify")
@click.argument("run")
@click.option("--from", "from_step", type=int, metavar="STEP",
              help="Replay from the checkpoint at this step (default: the oldest one kept).")
@click.option("--keep", is_flag=True, help="Keep the scratch folder of the replay (for a look at its output).")
@json_option
@pass_state
def verify_cmd(state: State, run: str, from_step: int | None, keep: bool, as_json: bool) -> None:
    """Replay RUN from one of its checkpoints and compare every point and the final weights
    bit for bit with what it recorded (exit 0 only when exact)."""
    from workbench.runs import probe_devices
    from workbench.runs.verify import verify_run

    project = state.project
    with open_index(project) as index:
        target = resolve(index, run)
        if not as_json:
            click.echo(f"replaying run {target.id} ({target.name or '—'}) from a checkpoint …", err=True)
        verdict = verify_run(project, index, target, from_step=from_step, probe=probe_devices(project.state_dir),
                             keep_scratch=keep)
    if as_json:
        print_json(verdict.to_dict())
    else:
        colour = "green" if verdict.exact else "red"
        click.echo(click.style(verdict.summary, fg=colour))
        if "scratch" in verdict.details:
            click.echo(f"  the replay's folder: {verdict.details['scratch']}")
    if not verdict.exact:
        sys.exit(1)


COMMANDS = [verify_cmd]
