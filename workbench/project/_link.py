"""Linking the per-file summaries: which classes are tasks, their MRO, and their config.

Names are resolved across files the way Python would import them (see
:mod:`workbench.project.discovery` for the rules); nothing is imported. The result is a
:class:`~workbench.project.taskinfo.Discovery`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.project._summary import ClassInfo, FileInfo, RawField
from workbench.project.config import ConfigField, with_trainer_ranges
from workbench.project.ranges import range_problem
from workbench.project.taskinfo import PIPELINE_STEPS, Discovery, DiscoveryError, TaskInfo

__all__ = ["link"]

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
        self.problems: dict[tuple[str, int, str], None] = {}  # (file, line, message), in order found

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

    # -- declared names (eval_fields, steps) ----------------------------------------------
    def declared(self, ref: _Ref, attribute: str) -> tuple[tuple[str, ...], _Ref | None]:
        """The nearest declaration of ``attribute`` along the MRO (its problems reported)."""
        for klass in self.mro(ref):
            names = getattr(klass.cls, attribute)
            if names is not None:
                for line, message in klass.cls.declare_problems:
                    if message.startswith(attribute + ":"):
                        self.problems[(klass.file.rel, line, message)] = None
                return names, klass
        return (), None

    def eval_fields(self, ref: _Ref, config: Sequence[ConfigField]) -> tuple[str, ...]:
        """The task's eval-time fields: those that name a config field or a group of them."""
        names, owner = self.declared(ref, "eval_fields")
        known = {f.name for f in config}
        kept = []
        for name in names:
            if name in known or any(k.startswith(name + ".") for k in known):
                kept.append(name)
            elif owner is not None:
                listing = ", ".join(sorted(known)) or "none"
                self.problems[(owner.file.rel, owner.cls.line,
                               f"eval_fields of {owner.cls.name}: {name!r} is not a config field "
                               f"(fields: {listing})")] = None
        return tuple(dict.fromkeys(kept))

    def steps(self, ref: _Ref) -> tuple[str, ...]:
        """The task's declared pipeline steps (unknown names reported, kept as declared)."""
        names, owner = self.declared(ref, "steps")
        unknown = [n for n in names if n not in PIPELINE_STEPS]
        if owner is not None and unknown:
            self.problems[(owner.file.rel, owner.cls.line,
                           f"steps of {owner.cls.name}: unknown step {unknown[0]!r}; steps are "
                           f"{', '.join(PIPELINE_STEPS)}")] = None
        if owner is not None and len(set(names)) != len(names):
            self.problems[(owner.file.rel, owner.cls.line,
                           f"steps of {owner.cls.name}: a step is named twice in {names!r}")] = None
        return names

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
                    self.check_default(child, origin, raw.line, f"{raw.name}.{child.name}")
                out.append(child)
            return _Group(raw.name, out)
        if raw.problem:
            self.problems[(origin.rel, raw.line, f"config field '{raw.name}': {raw.problem}")] = None
        return ConfigField(
            name=raw.name,
            type=raw.type,
            default=raw.default,
            has_default=raw.has_default,
            default_source=raw.default_source,
            help=raw.help,
            range=raw.range,
        )

    def check_default(self, child: ConfigField, origin: FileInfo, line: int, name: str) -> None:
        """Report a nested default given through a factory (``Optim(lr=-1)``) outside its range."""
        found = range_problem(child.default, child.range) if child.range is not None else None
        if found is not None:
            where, number, why = found
            at = f" (at {where})" if where else ""
            self.problems[(origin.rel, line, f"config field '{name}': the default {number!r}{at} is refused: {why}")] = None


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
                    prefix + item.name,
                    item.type,
                    item.default,
                    item.has_default,
                    item.default_source,
                    item.help,
                    item.range,
                    item.range_source,
                )
            out.append(item)
    if memo is not None:
        memo[(id(items), prefix)] = (items, out)  # holding ``items`` keeps its id unique
    return out


def _first_line(doc: str) -> str:
    for line in doc.splitlines():
        if line.strip():
            return line.strip()
    return ""


def link(root: Path, files: Sequence[FileInfo], framework: FileInfo | None) -> Discovery:
    """Find the tasks among the summaries of a project's files.

    Args:
        root: The project root (kept in the result).
        files: The summaries of the project's task files, in the order to report them.
        framework: The summary of the framework's own ``workbench/core/task.py``: its
            ``Task`` class counts as a base like any task's (its abstract methods too).

    Returns:
        The tasks, and the problems: files that could not be read, task-name clashes,
        and config fields whose declaration is refused (a Range that cannot be read, a
        default outside its range). A top-level config field the trainer reads that
        declares no range gets the trainer's (see
        :data:`~workbench.project.ranges.TRAINER_RANGES`).
    """
    task = framework.classes.get("Task") if framework is not None else None
    linker = _Linker(files, _Ref(framework, task) if framework is not None and task is not None else None)
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
            flat_config = tuple(with_trainer_ranges(_flatten(config, "", flat))) if config else ()
            doc = cls.doc or ""
            tasks.append(
                TaskInfo(
                    name=cls.name,
                    qualname=f"{info.module}.{cls.name}" if info.module else cls.name,
                    module=info.module,
                    file=info.rel,
                    line=cls.line,
                    summary=_first_line(doc),
                    doc=doc,
                    bases=cls.base_texts,
                    abstract=cls.abstract_flag is True or bool(missing),
                    abstract_methods=tuple(missing),
                    config=flat_config,
                    has_config=config is not None,
                    eval_fields=linker.eval_fields(ref, flat_config),
                    steps=linker.steps(ref),
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
                    kind="name",
                )
            )
        else:
            first[task.name] = task
    errors.extend(DiscoveryError(file, line, message, kind="config") for file, line, message in sorted(linker.problems))
    return Discovery(root=root, files=tuple(f.rel for f in files), tasks=tuple(tasks), errors=tuple(errors))

