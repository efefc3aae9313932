"""Static task discovery: find the ``workbench.Task`` subclasses in a project's task files.

Files are parsed with :mod:`ast`, never imported, so a broken task file cannot crash the
workbench: it is listed as a :class:`DiscoveryError` and the other tasks still show.

A class is a task when one of its bases is ``workbench.Task`` (however it was imported:
``from workbench import Task``, ``import workbench as wb``, ``from workbench.core import
Task``) or another task class, in the same file or in another task file. Imported bases
are resolved through the import (``from tasks.base import X``, ``from .base import X``,
``from base import X`` for a sibling file, re-exports in ``__init__.py``); when the import
cannot be followed to a task file, a task class of that name anywhere in the project
counts.

For each task, :class:`TaskInfo` holds its docstring, whether it is abstract, and its config
fields. The config is the task's nested ``class Config`` (or ``Config = SomeDataclass``),
else the one of the nearest task base in method resolution order; ``class
Config(Base.Config)`` merges the parent's fields first, with dataclass semantics (an
overriding field keeps its place). Fields whose annotation names a dataclass are flattened
into dotted names (``optim.lr``). A task is abstract when its body sets ``abstract = True``
or when an ``@abstractmethod`` along its chain is not overridden; the ``abstract`` flag is
not inherited (``abstract = False`` reads the same as no flag).
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from workbench.project._cache import CACHE_FILE, DiskCache, clear_cache, scan_file
from workbench.project._link import link
from workbench.project._summary import FileInfo
from workbench.project.settings import Project
from workbench.project.taskinfo import Discovery, DiscoveryError, TaskInfo

__all__ = [
    "DISCOVERY_CACHE_FILE",
    "Discovery",
    "DiscoveryError",
    "TaskInfo",
    "clear_discovery_cache",
    "discover",
    "discover_paths",
]

DISCOVERY_CACHE_FILE = CACHE_FILE
"""The name of the disk cache's file in the cache folder given to :func:`discover_paths`."""

_FRAMEWORK_FILE = Path(__file__).resolve().parent.parent / "core" / "task.py"


def _framework_task(disk: DiskCache | None = None) -> FileInfo | None:
    """The summary of the framework's own ``Task`` file, read (not imported) from the package source.

    Its abstract methods (``build_data``, ``build_model``) count like any task base's.
    """
    path = _FRAMEWORK_FILE
    # Named by its absolute path in a project's disk cache: a project file's name never
    # starts with "/".
    return scan_file(path, "workbench/core/task.py", disk, "/" + str(path))


@contextmanager
def _no_gc() -> Iterator[None]:
    """Hold off the cyclic garbage collector while summaries are built and linked.

    Parsing allocates many objects (syntax trees: no cycles, freed by reference counting),
    and every 700 allocations would otherwise start a collection that walks them again: a
    few per cent of discovery's time, more in a process with a large heap. The collector
    is re-enabled only if it was enabled before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _matching_files(root: Path, globs: Iterable[str], skip: Sequence[Path] = ()) -> list[tuple[Path, str]]:
    prefix = len(str(root)) + 1
    skipped = tuple(str(s) + os.sep for s in skip)
    found: dict[str, Path] = {}
    for pattern in globs:
        for path in root.glob(pattern):
            text = str(path)
            if not text.endswith(".py") or (skipped and text.startswith(skipped)):
                continue
            rel = text[prefix:].replace(os.sep, "/")
            if rel in found or any(p == "__pycache__" or p.startswith(".") for p in rel.split("/")[:-1]):
                continue
            found[rel] = path
    return [(found[rel], rel) for rel in sorted(found)]


def discover_paths(
    root: Path,
    globs: Iterable[str] = ("tasks/**/*.py",),
    *,
    skip: Sequence[Path] = (),
    cache_dir: Path | str | None = None,
) -> Discovery:
    """Discover the tasks in the files under ``root`` that match ``globs``.

    Files are taken once each, sorted; ``.py`` files only; folders named ``__pycache__``
    or starting with a dot (``.venv``, ``.workbench``) are skipped.

    Args:
        root: The project root; globs and reported paths are relative to it.
        globs: Glob patterns, e.g. ``["tasks/**/*.py"]``.
        skip: Folders to leave out (the project's state folder).
        cache_dir: A folder to keep the per-file summaries in between processes
            (``discovery-v1.json``; created when missing, and left alone when it cannot
            be written). The result is the same with or without it.

    Returns:
        The tasks and the problems found.
    """
    root = Path(root).resolve()
    disk = DiskCache(Path(cache_dir) / CACHE_FILE, root) if cache_dir is not None else None
    with _no_gc():
        files = [
            info
            for path, rel in _matching_files(root, globs, skip)
            if (info := scan_file(path, rel, disk)) is not None
        ]
        framework = _framework_task(disk)
        if disk is not None:
            disk.save()
        # Summaries are cached objects: the same objects mean the same files, so the same result.
        key = (str(root), framework, *files)
        with _linked_lock:
            hit = _linked.get(str(root))
        if hit is not None and hit[0] == key:
            return hit[1]
        discovery = link(root, files, framework)
    with _linked_lock:
        if len(_linked) >= 64:
            _linked.clear()
        _linked[str(root)] = (key, discovery)
    return discovery


_linked: dict[str, tuple[tuple[object, ...], Discovery]] = {}
_linked_lock = threading.Lock()


def discover(project: Project) -> Discovery:
    """Discover the tasks of a project (its ``tasks`` globs, minus its state folder), and
    its ``[scripts.NAME]`` tables as tasks of kind ``script`` after them.

    Args:
        project: The loaded project.

    Returns:
        The tasks and the problems found. Unchanged files are not parsed again: their
        summaries are kept in memory and in ``<state_dir>/cache/discovery-v1.json``.
    """
    found = discover_paths(
        project.root, project.task_globs, skip=(project.state_dir,), cache_dir=project.state_dir / "cache"
    )
    return with_scripts(found, project) if project.scripts else found


def with_scripts(discovery: Discovery, project: Project) -> Discovery:
    """``discovery`` with the project's scripts appended as tasks of kind ``script``.

    A script named like a task hides that task from ``workbench run`` (the script is what
    the name launches): listed as a problem, so the clash is seen.
    """
    from dataclasses import replace

    file = project.file.name
    tasks = {t.name: t for t in discovery.tasks}
    errors = list(discovery.errors)
    scripts = []
    for script in project.scripts:
        scripts.append(TaskInfo(
            name=script.name, qualname=f"scripts.{script.name}", module="", file=file, line=script.line,
            summary=script.summary, doc=" ".join(script.command), config=script.fields,
            has_config=bool(script.params), kind="script"))
        if script.name in tasks:
            errors.append(DiscoveryError(file, script.line, f"script '{script.name}' has the name of the task at "
                                         f"{tasks[script.name].location}; `workbench run {script.name}` launches "
                                         "the script: rename one", kind="name"))
    return replace(discovery, tasks=(*discovery.tasks, *scripts), errors=tuple(errors))


def clear_discovery_cache() -> None:
    """Forget every per-file summary and result kept in memory (disk caches are left alone).

    The next discovery reads the disk cache, or parses the files; a benchmark uses this to
    time a cold (or a new process's) discovery.
    """
    clear_cache()
    with _linked_lock:
        _linked.clear()
