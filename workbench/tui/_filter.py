"""The run filter typed after ``/``: words, ``field:value`` and config comparisons.

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

from workbench.tui._format import flatten

__all__ = ["RunFilter", "parse_filter"]

_FIELDS = ("status", "task", "tag", "device", "name", "backend", "id")
_COMPARISON = re.compile(r"^([A-Za-z_][\w.\-/]*)\s*(<=|>=|!=|==|=|<|>)\s*(.+)$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}

Predicate = Callable[[dict[str, Any]], bool]


@dataclass
class RunFilter:
    """A parsed filter: ``matches(row)``, and the terms that could not be read."""

    text: str = ""
    predicates: list[Predicate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def matches(self, row: dict[str, Any]) -> bool:
        """Whether the run passes every term."""
        return all(predicate(row) for predicate in self.predicates)

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


def _compare(key: str, op: str, raw: str) -> Predicate:
    wanted = _number(raw)
    compare = _OPS[op]
    key = key.removeprefix("config.")

    def predicate(row: dict[str, Any]) -> bool:
        config = row.get("_flat")
        if config is None:
            config = row["_flat"] = flatten(row.get("config"))
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

    def predicate(row: dict[str, Any]) -> bool:
        if name == "tag":
            tags = [str(t).lower() for t in row.get("tags") or []]
            return any(choice in tags for choice in choices)
        value = str(row.get(name) or "").lower()
        if name == "status":
            return any(value.startswith(choice) for choice in choices)
        return any(choice in value for choice in choices)

    return predicate


def _word(word: str) -> Predicate:
    needle = word.lower()

    def predicate(row: dict[str, Any]) -> bool:
        haystack = " ".join(str(row.get(k) or "") for k in ("name", "id", "task", "status"))
        haystack += " " + " ".join(str(t) for t in row.get("tags") or [])
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
            result.predicates.append(_field(name.lower(), raw))
            continue
        match = _COMPARISON.match(term)
        if match:
            result.predicates.append(_compare(*match.groups()))
            continue
        if sep and name:
            result.problems.append(f"{term}: unknown field {name!r}; one of {', '.join(_FIELDS)}")
            continue
        result.predicates.append(_word(term))
    return result
