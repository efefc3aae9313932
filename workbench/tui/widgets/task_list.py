"""The tasks of the project, with the files discovery could not read shown as errors."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

__all__ = ["TaskList"]


class TaskList(OptionList):
    """Launchable tasks and scripts (Enter opens the launch form), framework tasks dimmed,
    then errors."""

    def show(self, discovery: Any, error: str = "") -> None:
        """Fill the list from a ``Discovery`` (or show why there is none)."""
        highlighted = self.highlighted_option.id if self.highlighted_option is not None else None
        self.clear_options()
        options: list[Option] = []
        if discovery is None:
            text = Content.from_markup("[$error]⚠ $reason", reason=error) if error else Content("discovering…")
            self.add_options([Option(text, disabled=True)])
            return
        for task in discovery.tasks:
            if task.abstract:
                options.append(Option(Content.from_markup("[dim]  $name", name=task.name),
                                      id=f"abstract:{task.name}", disabled=True))
            elif getattr(task, "kind", "task") == "script":  # a [scripts.NAME] table of workbench.toml
                options.append(Option(Content.assemble(task.name, ("  script", "dim")), id=task.name))
            else:
                options.append(Option(Content(task.name), id=task.name))
        if not discovery.tasks:
            options.append(Option(Content.from_markup("[dim]no tasks found"), disabled=True))
        for problem in discovery.errors:
            where = f"{problem.file}:{problem.line}" if problem.line else problem.file
            options.append(Option(
                Content.from_markup("[$error]⚠ $where\n  [dim]$message", where=where, message=problem.message),
                id=f"error:{where}", disabled=True))
        self.add_options(options)
        ids = [o.id for o in options if not o.disabled]
        if highlighted in ids:
            self.highlighted = self.get_option_index(highlighted)
        elif ids:
            self.highlighted = self.get_option_index(ids[0])

    @property
    def current_task(self) -> str | None:
        """The highlighted launchable task, if any."""
        option = self.highlighted_option
        if option is None or option.disabled or option.id is None:
            return None
        return option.id
