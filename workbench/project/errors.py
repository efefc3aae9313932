"""Errors raised by the project layer: each one is a single line a user can act on."""

from __future__ import annotations

from workbench.configtypes import ConfigError  # defined in the leaf module the training core uses too
from workbench.errors import WorkbenchError

__all__ = ["ConfigError", "ProjectError", "ProjectNotFound", "TaskNotFound"]


class ProjectError(WorkbenchError):
    """``workbench.toml`` is missing, unreadable or invalid.

    The message names the file and, where it can be found, the line.
    """


class ProjectNotFound(ProjectError):
    """No ``workbench.toml`` in the start folder or any of its parents."""


class TaskNotFound(WorkbenchError):
    """A task name matches no task (or more than one, or only an abstract one)."""
