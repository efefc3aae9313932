"""The one door from the CLI to the terminal app (the only CLI module that imports the tui).

``textual`` is imported only when the app opens, so ``workbench --help`` stays light.
"""

from __future__ import annotations

import click

from workbench.cli._base import State, pass_state

__all__ = ["COMMANDS", "open_app"]


def open_app(state: State) -> None:
    """Open the terminal app on the project."""
    from workbench.tui import _graphics
    from workbench.tui.app import make_app

    try:
        _graphics.choose()  # asks the terminal about graphics now: once the app runs, it reads the keyboard
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    make_app(state.project.root).run()


@click.command("tui")
@pass_state
def tui_cmd(state: State) -> None:
    """Open the terminal app (the same as `workbench` with no command)."""
    open_app(state)


COMMANDS = [tui_cmd]
