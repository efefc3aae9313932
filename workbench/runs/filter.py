"""The run filter: words, ``field:value`` and config comparisons (the app's ``/`` filter,
and ``--where`` on the command line).

``brisk status:running,failed task:sine tag:sweep-a lr>0.01 hidden=64`` keeps the runs that
match every term: a plain word is looked for in the name, id, task, status and tags; a
``field:value`` term matches one field (``status``, ``task``, ``tag``, ``device``, ``name``,
``backend``); ``key<op>value`` compares a config value (``config.`` may prefix the key)
with ``= != < <= > >=``.
"""

from __future__ import annotations

import operator
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.runs.present import flatten_config
from workbench.store import Run, RunStatus

__all__ = ["RunFilter", "parse_filter"]

_FIELDS = ("status", "task", "tag", "device", "name", "backend", "id")
_COMPARISON = re.compile(r"^([A-Za-z_][\w.\-/]*)\s*(<=|>=|!=|==|=|<|>)\s*(.+)$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}

Predicate = Callable[[Run], bool]
_ORDERING = ("<", "<=", ">", ">=")
_FLAT_CACHE: dict[tuple[str, float], dict[str, Any]] = {}


@dataclass
class RunFilter:
    """A parsed filter: ``matches(run)``, and the terms that could not be read."""

    text: str = ""
    predicates: list[Predicate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def matches(self, run: Run) -> bool:
        """Whether the run passes every term."""
        return all(predicate(run) for predicate in self.predicates)

    @property
    def active(self) -> bool:
        """Whether the filter keeps anything out."""
        return bool(self.predicates)


def _number(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text.strip("\"'")


def _flat(run: Run) -> dict[str, Any]:
    """The run's flattened config, kept while the row does not change."""
    key = (run.id, run.updated_at)
    flat = _FLAT_CACHE.get(key)
    if flat is None:
        if len(_FLAT_CACHE) > 50_000:
            _FLAT_CACHE.clear()
        flat = _FLAT_CACHE[key] = flatten_config(run.config)
    return flat


def _compare(key: str, op: str, raw: str) -> Predicate:
    wanted = _number(raw)
    compare = _OPS[op]
    key = key.removeprefix("config.")

    def predicate(run: Run) -> bool:
        config = _flat(run)
        if key not in config:
            return False
        have = config[key]
        try:
            if isinstance(wanted, str):
                return compare(str(have).lower(), wanted.lower())
            if isinstance(have, bool) != isinstance(wanted, bool):
                return False
            return bool(compare(have, wanted))
        except TypeError:
            return False

    return predicate


def _field(name: str, raw: str) -> Predicate:
    choices = [c.lower() for c in raw.split(",") if c]

    def predicate(run: Run) -> bool:
        if name == "tag":
            tags = [str(t).lower() for t in run.tags]
            return any(choice in tags for choice in choices)
        value = str(getattr(run, name) or "").lower()
        if name == "status":
            return any(value.startswith(choice) for choice in choices)
        return any(choice in value for choice in choices)

    return predicate


def _word(word: str) -> Predicate:
    needle = word.lower()

    def predicate(run: Run) -> bool:
        haystack = " ".join(str(v or "") for v in (run.name, run.id, run.task, run.status))
        haystack += " " + " ".join(str(t) for t in run.tags)
        return needle in haystack.lower()

    return predicate


def parse_filter(text: str) -> RunFilter:
    """Read a filter; terms it cannot read are listed in ``problems`` and ignored.

    Args:
        text: What the user typed.

    Returns:
        The filter.
    """
    result = RunFilter(text=text)
    try:
        terms = shlex.split(text)
    except ValueError:
        terms = text.split()
    for term in terms:
        name, sep, raw = term.partition(":")
        if sep and name.lower() in _FIELDS:
            if not raw:
                result.problems.append(f"{term}: give a value after ':'")
                continue
            if name.lower() == "status":
                known = [s.value for s in RunStatus]
                bad = [c for c in raw.lower().split(",") if c and not any(k.startswith(c) for k in known)]
                if bad:
                    result.problems.append(f"{term}: no status {bad[0]!r}; one of {', '.join(known)}")
                    continue
            result.predicates.append(_field(name.lower(), raw))
            continue
        match = _COMPARISON.match(term)
        if match:
            key, op, raw = match.groups()
            if op in _ORDERING and isinstance(_number(raw), (str, bool)):
                result.problems.append(f"{term}: {op} compares numbers; {raw!r} is not a number")
                continue
            result.predicates.append(_compare(key, op, raw))
            continue
        if sep and name:
            result.problems.append(f"{term}: unknown field {name!r}; one of {', '.join(_FIELDS)}")
            continue
        result.predicates.append(_word(term))
    return result
