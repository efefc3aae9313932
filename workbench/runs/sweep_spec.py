"""The sweep grammar: ``-g KEY=V1,V2,…`` value lists and ``KEY=loguniform(a,b)`` distributions.

Pure functions, no project and no I/O: the text a user typed (or a sweep file's table)
becomes typed :class:`Param` objects, and those become trials (one ``{key: Item}`` mapping
per run) for a grid or a seeded random search. Nothing is ``eval``'d: values are TOML
literals, distributions a fixed set of names with numeric TOML arguments.

The splitting rule: commas separate values, except a comma inside ``[...]``, ``{...}``,
``(...)`` or a quoted string. So ``layers=[64,64],[32]`` is two lists and
``opt="adam,w",sgd`` is two strings; a value that holds a comma is quoted or bracketed.
Like ``-s``, a value that is not valid TOML (``opt=adam``) stays the text as typed and the
field's type decides.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from workbench.errors import WorkbenchError

__all__ = [
    "DISTRIBUTIONS",
    "Choice",
    "Distribution",
    "Item",
    "Param",
    "SweepSpecError",
    "Values",
    "check_unique",
    "grid_size",
    "grid_trials",
    "labelled_items",
    "param_from_toml",
    "parse_param",
    "random_trials",
    "split_items",
    "toml_text",
    "trial_overrides",
]

#: The distribution names the grammar knows.
DISTRIBUTIONS = ("uniform", "loguniform", "intuniform", "choice")

_CALL = re.compile(r"\s*([a-z_]+)\s*\((.*)\)\s*\Z", re.DOTALL)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_PAIRS = {"[": "]", "{": "}", "(": ")"}


class SweepSpecError(WorkbenchError):
    """A sweep parameter that cannot be read (the message is one line, naming the item)."""


@dataclass(frozen=True)
class Item:
    """One value of a parameter: the typed value and the TOML text it goes to ``-s`` as."""

    value: Any
    text: str


@dataclass(frozen=True)
class Values:
    """A list of values (``lr=1e-4,1e-3``): a grid's axis; a random search picks one."""

    key: str
    items: tuple[Item, ...]

    @property
    def size(self) -> int:
        """How many values."""
        return len(self.items)

    def describe(self) -> str:
        """The parameter as it would be typed."""
        return f"{self.key}={','.join(item.text for item in self.items)}"


@dataclass(frozen=True)
class Choice(Values):
    """``choice(v1, v2, …)``: the same as a value list, spelled as a distribution."""

    def describe(self) -> str:
        """The parameter as it would be typed."""
        return f"{self.key}=choice({', '.join(item.text for item in self.items)})"


@dataclass(frozen=True)
class Distribution:
    """``uniform(a, b)``, ``loguniform(a, b)`` (floats) or ``intuniform(a, b)`` (ints, both ends)."""

    key: str
    kind: str
    low: float
    high: float

    @property
    def log(self) -> bool:
        """Whether values are drawn uniformly in log space."""
        return self.kind == "loguniform"

    def bounds(self) -> tuple[Item, Item]:
        """The two bounds as items (checked against the field like any value)."""
        return _number_item(self.low), _number_item(self.high)

    def sample(self, rng: random.Random) -> Item:
        """One value drawn with ``rng``."""
        if self.kind == "intuniform":
            return _number_item(rng.randint(int(self.low), int(self.high)))
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        # Six significant digits: readable overrides (lr=0.000132267), no search lost.
        return _number_item(min(max(float(f"{value:.6g}"), self.low), self.high))

    def describe(self) -> str:
        """The parameter as it would be typed."""
        return f"{self.key}={self.kind}({_number_item(self.low).text}, {_number_item(self.high).text})"


Param = Union[Values, Distribution]


def labelled_items(param: Param) -> list[tuple[str, Item]]:
    """What to check of ``param`` against its field, each with the words that name it in a
    refusal: each item of a list (``item 2 (abc)``), or the two bounds of a distribution."""
    if isinstance(param, Values):
        return [(f"item {n} ({item.text})", item) for n, item in enumerate(param.items, 1)]
    low, high = param.bounds()
    return [(f"its low bound ({low.text})", low), (f"its high bound ({high.text})", high)]


def _number_item(value: float | int) -> Item:
    return Item(value, repr(value))


def _toml_value(raw: str) -> Any:
    """``raw`` as a TOML value, or the stripped text when it is not valid TOML (as ``-s``)."""
    from workbench.project.config import parse_override

    return parse_override("v=" + raw)[1]


def split_items(text: str, what: str = "") -> list[str]:
    """Split at the commas that are outside brackets, braces, parentheses and quotes.

    Raises:
        SweepSpecError: A bracket or quote is not closed, or closed without being opened.
    """
    items, start, stack, quote, i = [], 0, [], "", 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in _PAIRS:
            stack.append(_PAIRS[char])
        elif char in _PAIRS.values():
            if not stack or stack.pop() != char:
                raise SweepSpecError(f"{what or repr(text)}: {char!r} closes nothing")
        elif char == "," and not stack:
            items.append(text[start:i])
            start = i + 1
        i += 1
    if quote:
        raise SweepSpecError(f"{what or repr(text)}: a {quote} quote is not closed")
    if stack:
        raise SweepSpecError(f"{what or repr(text)}: a bracket is not closed (expected {stack[-1]!r})")
    items.append(text[start:])
    return [item.strip() for item in items]


def _items(key: str, raw_items: Sequence[str], what: str) -> tuple[Item, ...]:
    items = []
    for n, raw in enumerate(raw_items, 1):
        if not raw:
            raise SweepSpecError(f"{what}: item {n} is empty (a stray comma?)")
        items.append(Item(_toml_value(raw), raw))
    return tuple(items)


def _number(key: str, kind: str, raw: str, integer: bool) -> float | int:
    value = _toml_value(raw) if raw else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        need = "an integer" if integer else "a number"
        raise SweepSpecError(f"{key}={kind}(…): {raw or '(nothing)'!r} is not {need}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SweepSpecError(f"{key}={kind}(…): bounds must be finite, got {raw}")
    return value


def parse_param(text: str) -> Param:
    """Read one ``-g KEY=SPEC``: a comma-separated value list or a distribution.

    Examples: ``lr=1e-4,1e-3``, ``layers=[64,64],[32]``, ``lr=loguniform(1e-5, 1e-1)``,
    ``hidden=choice(32, 64, 128)``, ``epochs=intuniform(1, 5)``, ``dropout=uniform(0, 0.5)``.

    Raises:
        SweepSpecError: No ``=``, a bad key, an empty item, an unknown distribution, bad or
            non-numeric bounds, low >= high, or a log-scale bound <= 0.
    """
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SweepSpecError(f"bad sweep parameter {text!r}: expected KEY=V1,V2,… or KEY=loguniform(LOW,HIGH)")
    if not _KEY.match(key):
        raise SweepSpecError(f"bad sweep parameter {text!r}: {key!r} is not a config key")
    spec = spec.strip()
    if not spec:
        raise SweepSpecError(f"sweep parameter {key} has no values: expected {key}=V1,V2,…")
    call = _CALL.match(spec)
    if call is None:
        return Values(key, _items(key, split_items(spec, f"{key}={spec}"), key))
    kind, inner = call.group(1), call.group(2)
    if kind not in DISTRIBUTIONS:
        raise SweepSpecError(f"{key}={kind}(…): unknown distribution {kind!r}; known: {', '.join(DISTRIBUTIONS)}")
    args = split_items(inner, f"{key}={spec}")
    if kind == "choice":
        return Choice(key, _items(key, args, f"{key}=choice(…)"))
    if len(args) != 2:
        raise SweepSpecError(f"{key}={kind}(…) takes two bounds, LOW and HIGH; got {len(args)}")
    return _distribution(key, kind, *args)


def _distribution(key: str, kind: str, low_raw: Any, high_raw: Any) -> Distribution:
    integer = kind == "intuniform"
    low, high = (_number(key, kind, str(raw), integer) for raw in (low_raw, high_raw))
    if low >= high:
        raise SweepSpecError(f"{key}={kind}({low_raw}, {high_raw}): LOW must be below HIGH")
    if kind == "loguniform" and low <= 0:
        raise SweepSpecError(f"{key}=loguniform({low_raw}, {high_raw}): a log scale needs bounds above 0")
    return Distribution(key, kind, low, high)


def param_from_toml(key: str, value: Any) -> Param:
    """A sweep file's ``key = value``: an array is a value list, a string that reads as a
    distribution (``"loguniform(1e-5, 1e-1)"``) a distribution, anything else one value.

    Raises:
        SweepSpecError: A bad key or distribution, or an empty array.
    """
    if not _KEY.match(key):
        raise SweepSpecError(f"bad sweep parameter {key!r}: not a config key")
    call = _CALL.match(value) if isinstance(value, str) else None
    if call is not None and call.group(1) in DISTRIBUTIONS:
        return parse_param(f"{key}={value}")
    if isinstance(value, list):
        if not value:
            raise SweepSpecError(f"sweep parameter {key} has no values (an empty array)")
        return Values(key, tuple(Item(v, toml_text(v)) for v in value))
    return Values(key, (Item(value, toml_text(value)),))


def toml_text(value: Any) -> str:
    """``value`` as a one-line TOML literal (``[64, 64]``, ``{a = 1}``, ``"x"``, ``1e-05``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_text(v)}" for k, v in value.items()) + "}"
    from workbench.runs.spec import toml_literal  # dates and times

    return toml_literal(value)


def grid_size(params: Sequence[Param]) -> int:
    """How many runs a grid over ``params`` makes (their sizes multiplied).

    Raises:
        SweepSpecError: A parameter is a continuous distribution (a grid needs values).
    """
    size = 1
    for param in params:
        if isinstance(param, Distribution):
            raise SweepSpecError(f"{param.describe()} is a distribution: a grid needs a list of values "
                                 f"(or sample it with --random N)")
        size *= param.size
    return size


def grid_trials(params: Sequence[Param]) -> Iterator[dict[str, Item]]:
    """Every combination, the first parameter varying slowest."""
    grid_size(params)
    keys = [param.key for param in params]
    for combo in itertools.product(*(param.items for param in params)):  # type: ignore[union-attr]
        yield dict(zip(keys, combo))


def random_trials(params: Sequence[Param], count: int, seed: int) -> list[dict[str, Item]]:
    """``count`` trials drawn with ``random.Random(seed)``: the same seed, the same trials.

    A value list is sampled like ``choice``; each trial draws its parameters in order.
    """
    rng = random.Random(seed)
    trials = []
    for _ in range(count):
        trial = {}
        for param in params:
            trial[param.key] = param.sample(rng) if isinstance(param, Distribution) else rng.choice(param.items)
        trials.append(trial)
    return trials


def trial_overrides(trial: Mapping[str, Item]) -> list[str]:
    """A trial as ``KEY=VALUE`` overrides (the text of each value as typed, or ``repr``)."""
    return [f"{key}={item.text}" for key, item in trial.items()]


def check_unique(params: Iterable[Param]) -> None:
    """Refuse a key given twice.

    Raises:
        SweepSpecError: The key that repeats.
    """
    seen: set[str] = set()
    for param in params:
        if param.key in seen:
            raise SweepSpecError(f"sweep parameter {param.key} is given twice; give its values once: "
                                 f"-g {param.key}=V1,V2")
        seen.add(param.key)
