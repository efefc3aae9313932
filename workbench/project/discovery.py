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

import difflib
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.project._scan import CACHE_FILE, ClassInfo, DiskCache, FileInfo, RawField, no_gc, scan_file
from workbench.project.config import ConfigField
from workbench.project.errors import TaskNotFound
from workbench.project.settings import Project

__all__ = ["Discovery", "DiscoveryError", "TaskInfo", "discover", "discover_paths"]


@dataclass(frozen=True)
class DiscoveryError:
    """A problem found while discovering tasks (not an exception: it is listed).

    Attributes:
        file: The file, relative to the project root.
        line: The 1-based line, or 0 when there is none.
        message: What is wrong, in one line.
    """

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"file", "line", "message"}``."""
        return {"file": self.file, "line": self.line, "message": self.message}


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
        broken = [str(e) for e in self.errors if not e.message.startswith("task name")]
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


# ------------------------------------------------------------------ linking the summaries

_ROOT = "workbench.Task"  # a resolved base that is the framework's Task itself


class _Ref:
    """A class found in one of the scanned files (``config``: its ``.Config`` was meant)."""

    __slots__ = ("file", "cls", "config", "key")

    def __init__(self, file: FileInfo, cls: ClassInfo, config: bool = False) -> None:
        self.file = file
        self.cls = cls
        self.config = config
        self.key = (file.rel, cls.qualname)


@dataclass
class _Group:
    """A nested dataclass field while linking (flattened at the end)."""

    name: str
    children: list[ConfigField | _Group] = field(default_factory=list)


def _is_framework_task(dotted: str) -> bool:
    return dotted == _ROOT or (dotted.startswith("workbench.") and dotted.endswith(".Task"))


class _Linker:
    """Resolves names across files: which classes are tasks, their MRO, their config."""

    def __init__(self, files: Sequence[FileInfo], framework: _Ref | None) -> None:
        self.modules: dict[str, FileInfo] = {}
        self.tails: dict[str, list[FileInfo]] = {}  # "base" and "tasks.base" -> src/tasks/base.py
        self.by_name: dict[str, list[_Ref]] = {}
        for info in files:
            self.modules.setdefault(info.module, info)
            parts = info.module.split(".")
            for cut in range(1, len(parts)):
                self.tails.setdefault(".".join(parts[cut:]), []).append(info)
            for cls in info.classes.values():
                self.by_name.setdefault(cls.name, []).append(_Ref(info, cls))
        self.framework = framework
        self._task: dict[tuple[str, str], bool] = {}
        self._mro: dict[tuple[str, str], list[_Ref]] = {}
        self._fields: dict[tuple[str, str], list[ConfigField | _Group]] = {}
        self._busy: set[tuple[str, str]] = set()
        self._resolved: dict[tuple[int, str, str], _Ref | str | None] = {}
        self._guesses = 0  # how many times a name was matched by class name (see resolve)

    # -- names ---------------------------------------------------------------------------
    def module_file(self, dotted: str, origin: FileInfo) -> FileInfo | None:
        found = self.modules.get(dotted)
        if found is None and origin.package:  # `from base import X` next to the file
            found = self.modules.get(f"{origin.package}.{dotted}")
        if found is None:  # e.g. a src/ layout: `tasks.base` is the module `src.tasks.base`
            tails = self.tails.get(dotted, ())
            found = tails[0] if len(tails) == 1 else None
        return found

    def resolve(self, dotted: str | None, origin: FileInfo, *, exclude: str = "", depth: int = 0) -> _Ref | str | None:
        """Resolve a dotted name used in ``origin`` to a scanned class, ``_ROOT`` or None.

        Answers are remembered, unless a name was matched by class name on the way: that
        depends on which classes are known to be tasks so far.
        """
        if depth or not dotted:
            return self._resolve(dotted, origin, exclude, depth)
        key = (id(origin), dotted, exclude)  # the linker keeps every origin alive
        if key in self._resolved:
            return self._resolved[key]
        guesses = self._guesses
        found = self._resolve(dotted, origin, exclude, 0)
        if self._guesses == guesses:
            self._resolved[key] = found
        return found

    def _resolve(self, dotted: str | None, origin: FileInfo, exclude: str, depth: int) -> _Ref | str | None:
        if not dotted or depth > 12:
            return None
        head, _, rest = dotted.partition(".")
        if head in origin.classes and head != exclude:
            if not rest:
                return _Ref(origin, origin.classes[head])
            return _Ref(origin, origin.classes[head], config=True) if rest == "Config" else None
        if head in origin.bindings:
            full = origin.bindings[head] + ("." + rest if rest else "")
            return self.resolve_absolute(full, origin, depth)
        for star in origin.stars:
            source = self.module_file(star, origin)
            if source is not None and source is not origin and head in source.classes:
                return self.resolve(dotted, source, depth=depth + 1)
        return None

    def resolve_absolute(self, full: str, origin: FileInfo, depth: int) -> _Ref | str | None:
        if _is_framework_task(full):
            return _ROOT
        if full.startswith("workbench.") and full.endswith(".Task.Config"):
            return _ROOT + ".Config"
        parts = full.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            source = self.module_file(".".join(parts[:cut]), origin)
            if source is not None:
                return self.resolve(".".join(parts[cut:]), source, depth=depth + 1)
        # The import leads outside the task files: match a task class by name.
        self._guesses += 1
        config = parts[-1] == "Config" and len(parts) > 1
        name = parts[-2] if config else parts[-1]
        for ref in self.by_name.get(name, ()):
            if self.is_task(ref):
                return _Ref(ref.file, ref.cls, config)
        return None

    # -- tasks ---------------------------------------------------------------------------
    def task_bases(self, ref: _Ref) -> tuple[list[_Ref], bool]:
        """Return the task-class bases of ``ref``, and whether it derives from Task directly."""
        bases: list[_Ref] = []
        direct = False
        for dotted in ref.cls.bases:
            target = self.resolve(dotted, ref.file, exclude=ref.cls.name)
            if target == _ROOT:
                direct = True
            elif isinstance(target, _Ref) and not target.config and self.is_task(target):
                bases.append(target)
        return bases, direct

    def is_task(self, ref: _Ref) -> bool:
        key = ref.key
        if key in self._task:
            return self._task[key]
        self._task[key] = False  # a cycle of bases is not a task
        bases, direct = self.task_bases(ref)
        self._task[key] = direct or bool(bases)
        return self._task[key]

    def mro(self, ref: _Ref) -> list[_Ref]:
        key = ref.key
        if key in self._mro:
            return self._mro[key]
        self._mro[key] = [ref]  # guards against cycles
        bases, direct = self.task_bases(ref)
        if direct and self.framework is not None and ref.key != self.framework.key:
            bases.append(self.framework)
        if len(bases) == 1:  # single inheritance: C3 gives the base's MRO after the class
            chain = self.mro(bases[0])
            if len({r.key for r in chain}) == len(chain):
                self._mro[key] = [ref, *chain]
                return self._mro[key]
        sequences = [list(self.mro(b)) for b in bases] + [list(bases)]
        merged: list[_Ref] = [ref]
        while any(sequences):
            tails = [r.key for other in sequences for r in other[1:]]
            for seq in sequences:
                if not seq:
                    continue
                head = seq[0]
                if head.key not in tails:
                    break
            else:  # inconsistent hierarchy (Python would refuse it): depth-first instead
                merged += [r for seq in sequences for r in seq if r.key not in {m.key for m in merged}]
                break
            merged.append(head)
            sequences = [s[1:] if s and s[0].key == head.key else s for s in sequences]
        self._mro[key] = merged
        return merged

    def abstract_methods(self, ref: _Ref) -> list[str]:
        chain = self.mro(ref)
        names = set().union(*(r.cls.abstract_methods for r in chain))
        left = []
        for name in sorted(names):
            owner = next(r for r in chain if name in r.cls.defined)
            if name in owner.cls.abstract_methods:
                left.append(name)
        return left

    # -- config --------------------------------------------------------------------------
    def task_config(self, ref: _Ref) -> list[ConfigField | _Group] | None:
        for klass in self.mro(ref):
            if klass.cls.config is not None:
                return self.dataclass_fields(_Ref(klass.file, klass.cls.config))
            if klass.cls.config_alias:
                target = self.resolve(klass.cls.config_alias, klass.file)
                if isinstance(target, _Ref):
                    if target.config:
                        return self.task_config(_Ref(target.file, target.cls)) or []
                    return self.dataclass_fields(target)
                return []
        return None

    def dataclass_fields(self, ref: _Ref) -> list[ConfigField | _Group]:
        key = ref.key
        if key in self._fields:
            return self._fields[key]
        if key in self._busy:
            return []
        self._busy.add(key)
        merged: dict[str, ConfigField | _Group] = {}
        for dotted in reversed(ref.cls.bases):
            target = self.resolve(dotted, ref.file, exclude=ref.cls.name)
            parent: list[ConfigField | _Group] = []
            if isinstance(target, _Ref) and target.config:
                parent = self.task_config(_Ref(target.file, target.cls)) or []
            elif isinstance(target, _Ref) and (target.cls.is_dataclass or target.cls.name == "Config"):
                parent = self.dataclass_fields(target)
            for item in parent:
                merged[item.name] = item
        for raw in ref.cls.fields:
            merged[raw.name] = self.field(raw, ref.file)
        self._busy.discard(key)
        self._fields[key] = list(merged.values())
        return self._fields[key]

    @staticmethod
    def _same(a: _Ref | str | None, b: _Ref) -> bool:
        return isinstance(a, _Ref) and a.key == b.key and not a.config

    def field(self, raw: RawField, origin: FileInfo) -> ConfigField | _Group:
        target = self.resolve(raw.type_ref, origin) if raw.type_ref else None
        if isinstance(target, _Ref) and not target.config and target.cls.is_dataclass and target.key not in self._busy:
            children = self.dataclass_fields(target)
            given = raw.factory_kwargs if raw.factory_ref and self._same(self.resolve(raw.factory_ref, origin), target) else {}
            out: list[ConfigField | _Group] = []
            for child in children:
                if isinstance(child, ConfigField) and child.name in given:
                    child = replace(child, default=given[child.name], has_default=True, default_source="")
                out.append(child)
            return _Group(raw.name, out)
        return ConfigField(
            name=raw.name,
            type=raw.type,
            default=raw.default,
            has_default=raw.has_default,
            default_source=raw.default_source,
            help=raw.help,
        )


_FRAMEWORK_FILE = Path(__file__).resolve().parent.parent / "core" / "task.py"


def _framework_task(disk: DiskCache | None = None) -> _Ref | None:
    """The framework's own ``Task`` class, read (not imported) from the package source.

    Its abstract methods (``build_data``, ``build_model``) count like any task base's.
    """
    path = _FRAMEWORK_FILE
    # Named by its absolute path in a project's disk cache: a project file's name never
    # starts with "/".
    info = scan_file(path, "workbench/core/task.py", disk, "/" + str(path))
    cls = info.classes.get("Task") if info is not None else None
    return _Ref(info, cls) if cls is not None else None


_FlatMemo = dict[tuple[int, str], tuple[Sequence[Any], list[ConfigField]]]


def _flatten(items: Sequence[ConfigField | _Group], prefix: str = "", memo: _FlatMemo | None = None) -> list[ConfigField]:
    """Flatten nested groups into dotted names (``memo``: lists already flattened, by id)."""
    if memo is not None:
        hit = memo.get((id(items), prefix))
        if hit is not None:
            return hit[1]
    out: list[ConfigField] = []
    for item in items:
        if isinstance(item, _Group):
            out.extend(_flatten(item.children, f"{prefix}{item.name}.", memo))
        else:
            if prefix:
                item = ConfigField(
                    prefix + item.name, item.type, item.default, item.has_default, item.default_source, item.help
                )
            out.append(item)
    if memo is not None:
        memo[(id(items), prefix)] = (items, out)  # holding ``items`` keeps its id unique
    return out


def _summary(doc: str) -> str:
    for line in doc.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _link(root: Path, files: Sequence[FileInfo], framework: _Ref | None) -> Discovery:
    linker = _Linker(files, framework)
    flat: _FlatMemo = {}
    tasks: list[TaskInfo] = []
    errors: list[DiscoveryError] = []
    for info in files:
        if info.error is not None:
            errors.append(DiscoveryError(info.rel, info.error[0], info.error[1]))
            continue
        for cls in sorted(info.classes.values(), key=lambda c: c.line):
            ref = _Ref(info, cls)
            if not linker.is_task(ref):
                continue
            config = linker.task_config(ref)
            missing = linker.abstract_methods(ref)
            doc = cls.doc or ""
            tasks.append(
                TaskInfo(
                    name=cls.name,
                    qualname=f"{info.module}.{cls.name}" if info.module else cls.name,
                    module=info.module,
                    file=info.rel,
                    line=cls.line,
                    summary=_summary(doc),
                    doc=doc,
                    bases=cls.base_texts,
                    abstract=cls.abstract_flag is True or bool(missing),
                    abstract_methods=tuple(missing),
                    config=tuple(_flatten(config, "", flat)) if config else (),
                    has_config=config is not None,
                )
            )
    first: dict[str, TaskInfo] = {}
    for task in tasks:
        if task.name in first:
            other = first[task.name]
            errors.append(
                DiscoveryError(
                    task.file,
                    task.line,
                    f"task name '{task.name}' is also defined at {other.location}; "
                    "tasks are addressed by name, so rename one",
                )
            )
        else:
            first[task.name] = task
    return Discovery(root=root, files=tuple(f.rel for f in files), tasks=tuple(tasks), errors=tuple(errors))


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
    with no_gc():
        files = [
            info
            for path, rel in _matching_files(root, globs, skip)
            if (info := scan_file(path, rel, disk)) is not None
        ]
        framework = _framework_task(disk)
        if disk is not None:
            disk.save()
        # Summaries are cached objects: the same objects mean the same files, so the same result.
        key = (str(root), framework.file if framework else None, *files)
        with _linked_lock:
            hit = _linked.get(str(root))
        if hit is not None and hit[0] == key:
            return hit[1]
        discovery = _link(root, files, framework)
    with _linked_lock:
        if len(_linked) >= 64:
            _linked.clear()
        _linked[str(root)] = (key, discovery)
    return discovery


_linked: dict[str, tuple[tuple[object, ...], Discovery]] = {}
_linked_lock = threading.Lock()


def discover(project: Project) -> Discovery:
    """Discover the tasks of a project (its ``tasks`` globs, minus its state folder).

    Args:
        project: The loaded project.

    Returns:
        The tasks and the problems found. Unchanged files are not parsed again: their
        summaries are kept in memory and in ``<state_dir>/cache/discovery-v1.json``.
    """
    return discover_paths(
        project.root, project.task_globs, skip=(project.state_dir,), cache_dir=project.state_dir / "cache"
    )

