"""The error a task's own steps cause: shared by the task and the loop that runs it."""

from __future__ import annotations

from workbench.errors import WorkbenchError

__all__ = ["TaskError"]


class TaskError(WorkbenchError):
    """A task is missing a step it needs, or a step returned something unusable."""
