"""Stages, fixtures and extension hooks.

The meta-algorithms run in named, nested *stages* (``fit › epoch › batch``). While a stage
runs, it provides named values, *fixtures* (``epoch``, ``batch``, ``loss``, ``model`` …).
An *extension* is any object with methods named ``before_<stage>`` / ``after_<stage>``;
each method's parameter names pick the fixtures it is called with.

Names are resolved once, when an extension is attached: an unknown stage or fixture fails
then, with the list of what is available, never in the middle of a run. Dispatch is
precomputed (a list of ``(method, getter)`` pairs per hook), so a hook costs a call and a
dict lookup per fixture.

A fixture lives exactly as long as the stage that provides it, and a stage may not
redefine a fixture of a stage that encloses it.
"""

from __future__ import annotations

import inspect
import operator
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from workbench.errors import WorkbenchError

__all__ = [
    "DEFAULT_STAGES",
    "ExtensionError",
    "FixtureError",
    "Hooks",
    "StageSpec",
    "StageTree",
]


class FixtureError(WorkbenchError):
    """A stage redefined a fixture of an enclosing stage, or a fixture is missing."""


class ExtensionError(WorkbenchError):
    """An extension names a stage or fixture that does not exist."""


@dataclass(frozen=True)
class StageSpec:
    """One stage of the tree.

    Attributes:
        name: The stage's name; hooks are ``before_<name>`` and ``after_<name>``.
        parent: The enclosing stage, or None for the root.
        enter: Fixtures provided when the stage starts: available to its ``before_`` and
            ``after_`` hooks and to every stage inside it.
        exit: Fixtures provided while the stage runs: available to its ``after_`` hook only.
        hookable: Whether extensions may hook this stage.
        doc: One line for the docs and error messages.
    """

    name: str
    parent: str | None
    enter: tuple[str, ...] = ()
    exit: tuple[str, ...] = ()
    hookable: bool = True
    doc: str = ""


class StageTree:
    """A validated tree of stages: which fixtures each hook can see.

    Args:
        specs: The stages; parents must be listed before their children.

    Raises:
        FixtureError: A stage redefines a fixture of one of its enclosing stages.
        ValueError: A parent is unknown or a name repeats.
    """

    def __init__(self, specs: Iterable[StageSpec]) -> None:
        self.specs: dict[str, StageSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise ValueError(f"stage {spec.name!r} is defined twice")
            if spec.parent is not None and spec.parent not in self.specs:
                raise ValueError(f"stage {spec.name!r}: unknown parent {spec.parent!r}")
            own = spec.enter + spec.exit
            if len(set(own)) != len(own):
                raise FixtureError(f"stage {spec.name!r} names a fixture twice")
            for outer in self.ancestors(spec.parent):
                clash = set(own) & set(outer.enter)
                if clash:
                    raise FixtureError(
                        f"stage {spec.name!r} redefines fixture {sorted(clash)[0]!r} "
                        f"of the enclosing stage {outer.name!r}"
                    )
            self.specs[spec.name] = spec

    def ancestors(self, name: str | None) -> Iterator[StageSpec]:
        """Yield the stage called ``name`` and the stages that enclose it, innermost first."""
        while name is not None:
            spec = self.specs[name]
            yield spec
            name = spec.parent

    def hook_names(self) -> list[str]:
        """All valid hook method names, e.g. ``before_batch``."""
        return [
            f"{phase}_{name}"
            for name, spec in self.specs.items()
            if spec.hookable
            for phase in ("before", "after")
        ]

    def available(self, stage: str, phase: str) -> list[str]:
        """The fixtures a ``<phase>_<stage>`` hook may ask for, outermost first."""
        names: list[str] = []
        for spec in reversed(list(self.ancestors(stage))):
            names.extend(spec.enter)
        if phase == "after":
            names.extend(self.specs[stage].exit)
        return names

    def path(self, stage: str) -> str:
        """The stage's place in the tree, e.g. ``fit › epoch › batch``."""
        names = [s.name for s in self.ancestors(stage) if s.hookable]
        return " › ".join(reversed(names))


DEFAULT_STAGES = StageTree(
    [
        StageSpec(
            "session",
            None,
            enter=(
                "task", "config", "state", "device", "backend", "precision",
                "model", "optimizer", "scheduler", "criterion", "data", "log",
            ),
            hookable=False,
            doc="a call of fit(), test() or evaluate(): everything the task built",
        ),
        StageSpec("setup", "session", doc="after the task is built, before any loop runs"),
        StageSpec(
            "fit",
            "session",
            enter=("train_loader", "val_loader", "max_epochs", "total_steps"),
            doc="the whole training loop",
        ),
        StageSpec("epoch", "fit", enter=("epoch",), doc="one pass over the training data"),
        StageSpec(
            "batch",
            "epoch",
            enter=("batch", "batch_idx"),
            exit=("outputs", "loss"),
            doc="one training batch: forward, loss, backward, update",
        ),
        StageSpec("validate", "session", enter=("loader",), exit=("metrics",),
                  doc="one pass over the validation data (after each epoch, or evaluate())"),
        StageSpec("validate_batch", "validate", enter=("batch", "batch_idx"), exit=("outputs",),
                  doc="one validation batch"),
        StageSpec("test", "session", enter=("loader",), exit=("metrics",),
                  doc="one pass over the test data"),
        StageSpec("test_batch", "test", enter=("batch", "batch_idx"), exit=("outputs",),
                  doc="one test batch"),
        StageSpec("teardown", "session", doc="the end of fit(), test() or evaluate(), even on error"),
    ]
)


def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if not names:
        return lambda values: ()
    if len(names) == 1:
        name = names[0]
        return lambda values: (values[name],)
    return operator.itemgetter(*names)


def _extension_name(ext: object) -> str:
    return type(ext).__name__


class Hooks:
    """Attached extensions, their hooks resolved against a stage tree, and live fixtures.

    Args:
        tree: The stage tree hooks are checked against.
    """

    def __init__(self, tree: StageTree = DEFAULT_STAGES) -> None:
        self.tree = tree
        self.extensions: list[object] = []
        self._table: dict[str, list[tuple[Callable[..., Any], Callable[[dict], tuple]]]] = {}
        self._valid = set(tree.hook_names())
        # The live fixtures of every stage that is running now (no shadowing allowed,
        # so one flat dict is enough), and which names each running stage owns.
        self.values: dict[str, Any] = {}
        self._owned: list[tuple[str, list[str]]] = []

    # -- attaching -------------------------------------------------------------------

    def attach(self, ext: object) -> None:
        """Attach an extension, resolving each of its hooks' fixture names now.

        Raises:
            ExtensionError: A hook names an unknown stage, or asks for a fixture its
                stage does not provide.
        """
        resolved = []
        for attr in dir(type(ext)):
            if not (attr.startswith("before_") or attr.startswith("after_")):
                continue
            method = getattr(ext, attr)
            if not callable(method):
                continue
            if attr not in self._valid:
                raise ExtensionError(
                    f"extension {_extension_name(ext)}: no stage for hook {attr}(); "
                    f"valid hooks: {', '.join(sorted(self._valid))}"
                )
            phase, stage = attr.split("_", 1)
            names = self._resolve(ext, attr, method, stage, phase)
            resolved.append((attr, method, names))
        for attr, method, names in resolved:
            self._table.setdefault(attr, []).append((method, _getter(names)))
        self.extensions.append(ext)

    def _resolve(self, ext: object, attr: str, method: Callable[..., Any], stage: str,
                 phase: str) -> tuple[str, ...]:
        available = self.tree.available(stage, phase)
        names = []
        for param in inspect.signature(method).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ExtensionError(
                    f"extension {_extension_name(ext)}: {attr}() takes *{param.name}; "
                    "name each fixture it needs instead"
                )
            if param.name not in available:
                where = ""
                if phase == "before" and param.name in self.tree.specs[stage].exit:
                    where = f" ('{param.name}' exists only in after_{stage})"
                raise ExtensionError(
                    f"extension {_extension_name(ext)}: {attr}() asks for unknown fixture "
                    f"{param.name!r}{where}; available: {', '.join(available)}"
                )
            names.append(param.name)
        return tuple(names)

    def has(self, hook: str) -> bool:
        """Whether any attached extension implements ``hook``."""
        return hook in self._table

    # -- running -----------------------------------------------------------------------

    def enter(self, stage: str, **fixtures: Any) -> None:
        """Start ``stage``: provide its entry fixtures and call its ``before_`` hooks."""
        self._provide(stage, fixtures)
        self.call(f"before_{stage}")

    def provide(self, stage: str, **fixtures: Any) -> None:
        """Provide fixtures from inside the running ``stage`` (its ``exit`` fixtures)."""
        self._provide(stage, fixtures, append=True)

    def _provide(self, stage: str, fixtures: dict[str, Any], append: bool = False) -> None:
        values = self.values
        for name in fixtures:
            if name in values and not (append and name in self._owned[-1][1]):
                raise FixtureError(
                    f"stage {stage!r} redefines fixture {name!r} of an enclosing stage"
                )
        values.update(fixtures)
        if append:
            self._owned[-1][1].extend(n for n in fixtures if n not in self._owned[-1][1])
        else:
            self._owned.append((stage, list(fixtures)))

    def exit(self, stage: str, *, call: bool = True) -> None:
        """End ``stage``: call its ``after_`` hooks, then drop its fixtures."""
        try:
            if call:
                self.call(f"after_{stage}")
        finally:
            self.drop(stage)

    def drop(self, stage: str) -> None:
        """Drop ``stage``'s fixtures (and those of any stage inside it still open)."""
        while self._owned:
            name, owned = self._owned.pop()
            for fixture in owned:
                self.values.pop(fixture, None)
            if name == stage:
                return

    def call(self, hook: str) -> None:
        """Call every extension's ``hook`` with the fixtures it asked for."""
        entries = self._table.get(hook)
        if entries:
            values = self.values
            for method, get in entries:
                method(*get(values))
