"""What task discovery reports: :class:`Discovery`, its :class:`TaskInfo` and :class:`DiscoveryError` records.

Plain frozen records, made by :func:`workbench.project.discover` and read by the CLI, the
TUI and the run machinery.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.project.config import ConfigField
from workbench.project.errors import TaskNotFound

__all__ = ["PIPELINE_STEPS", "Discovery", "DiscoveryError", "TaskInfo"]

#: The steps a task's pipeline may name (``steps = ("fit", "test")``): its meta-algorithms.
PIPELINE_STEPS = ("fit", "test", "evaluate")


@dataclass(frozen=True)
class DiscoveryError:
    """A problem found while discovering tasks (not an exception: it is listed).

    Attributes:
        file: The file, relative to the project root.
        line: The 1-based line, or 0 when there is none.
        message: What is wrong, in one line.
        kind: ``"file"``: the file could not be read or parsed (its tasks are missing);
            ``"name"``: two tasks share a name; ``"config"``: a config field's
            declaration is refused (its task is listed, without that check).
    """

    file: str
    line: int
    message: str
    kind: str = "file"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"file", "line", "message", "kind"}``."""
        return {"file": self.file, "line": self.line, "message": self.message, "kind": self.kind}


@dataclass(frozen=True)
class TaskInfo:
    """A task class found in the project's files (static information only).

    Attributes:
        name: The class name; the CLI addresses tasks by it.
        qualname: Module path and class name, e.g. ``tasks.sine.SineRegression``.
        module: The module path, e.g. ``tasks.sine``.
        file: The file, relative to the project root, with ``/`` separators.
        line: The line of the ``class`` statement.
        summary: The docstring's first line (``""`` without a docstring).
        doc: The whole docstring, dedented.
        bases: The bases as written, e.g. ``("Framework",)`` or ``("wb.Task",)``.
        abstract: Whether the task cannot be launched (see the module docs).
        abstract_methods: Abstract methods still not overridden.
        config: The config fields, nested dataclasses flattened with dotted names.
        has_config: Whether the task (or a task base) defines a ``Config``.
        eval_fields: The config fields ``workbench test``/``eval`` may change (a
            ``eval_fields = ("threshold", "batch_size")`` class attribute, inherited;
            dotted names for nested fields, a group's name for all its fields).
        steps: The pipeline's steps (a ``steps = ("fit", "test")`` class attribute,
            inherited); empty when the task declares none (the launch's default).
    """

    name: str
    qualname: str
    module: str
    file: str
    line: int
    summary: str = ""
    doc: str = ""
    bases: tuple[str, ...] = ()
    abstract: bool = False
    abstract_methods: tuple[str, ...] = ()
    config: tuple[ConfigField, ...] = ()
    has_config: bool = False
    kind: str = "task"
    eval_fields: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()

    @property
    def location(self) -> str:
        """``file:line`` of the class statement."""
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict of the task.

        Returns:
            The attributes as plain values; ``config`` is a list of field dicts
            (see :meth:`ConfigField.to_dict`).
        """
        return {
            "name": self.name,
            "qualname": self.qualname,
            "module": self.module,
            "file": self.file,
            "line": self.line,
            "summary": self.summary,
            "doc": self.doc,
            "bases": list(self.bases),
            "abstract": self.abstract,
            "abstract_methods": list(self.abstract_methods),
            "has_config": self.has_config,
            "config": [f.to_dict() for f in self.config],
            "eval_fields": list(self.eval_fields),
            "steps": list(self.steps),
        }


@dataclass(frozen=True)
class Discovery:
    """The result of discovery: the tasks, and the problems found on the way.

    Attributes:
        root: The project root.
        files: The files that were read, relative to the root, sorted.
        tasks: The tasks, sorted by file then line.
        errors: Files that could not be read or parsed, and task-name clashes.
    """

    root: Path
    files: tuple[str, ...] = ()
    tasks: tuple[TaskInfo, ...] = ()
    errors: tuple[DiscoveryError, ...] = ()

    @property
    def launchable(self) -> tuple[TaskInfo, ...]:
        """The tasks that are not abstract."""
        return tuple(t for t in self.tasks if not t.abstract)

    def get(self, name: str, *, launchable: bool = False) -> TaskInfo:
        """Find a task by name (or by ``qualname``, or by ``FILE:NAME`` when names clash).

        Args:
            name: The task's name, e.g. ``SineRegression``.
            launchable: Refuse an abstract task.

        Returns:
            The task.

        Raises:
            TaskNotFound: No task has that name (the message lists the launchable tasks
                and suggests a close name), the name is defined twice, or ``launchable``
                is set and the task is abstract.
        """
        matches = [t for t in self.tasks if name in (t.name, t.qualname, f"{t.file}:{t.name}")]
        if len(matches) > 1:
            places = " and ".join(t.location for t in matches)
            raise TaskNotFound(
                f"task name '{name}' is ambiguous: defined at {places}; "
                f"name one as FILE:NAME, e.g. '{matches[0].file}:{name}', or rename one"
            )
        if matches:
            task = matches[0]
            if launchable and task.abstract:
                why = f" (abstract methods: {', '.join(task.abstract_methods)})" if task.abstract_methods else ""
                concrete = ", ".join(sorted({t.name for t in self.launchable})) or "none"
                raise TaskNotFound(
                    f"task '{task.name}' at {task.location} is abstract{why} and cannot be launched; "
                    f"launchable tasks: {concrete}"
                )
            return task
        names = sorted({t.name for t in self.launchable})
        lowered = {n.lower(): n for n in names}
        close = [lowered[name.lower()]] if name.lower() in lowered else difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listing = f"available: {', '.join(names)}" if names else "no launchable tasks found"
        broken = [str(e) for e in self.errors if e.kind == "file"]
        note = f"; {len(broken)} file(s) could not be read: {', '.join(broken[:3])}" if broken else ""
        raise TaskNotFound(f"no task named '{name}'{hint}; {listing}{note}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict: ``{"root", "files", "tasks", "errors"}``."""
        return {
            "root": str(self.root),
            "files": list(self.files),
            "tasks": [t.to_dict() for t in self.tasks],
            "errors": [e.to_dict() for e in self.errors],
        }

