"""Ranges for config fields, declared statically: ``epochs: Annotated[int, Range(1, None)]``.

A task declares the allowed values of its own numeric fields in its ``Config``::

    from typing import Annotated
    from workbench import Range

    @dataclass
    class Config:
        epochs: Annotated[int, Range(1, None)] = 10        # >= 1
        lr: Annotated[float, Range(0, 1, low_open=True)] = 0.1  # 0 < lr <= 1
        decay: Annotated[float, Range(0, None, finite=True)] = 0.0  # >= 0, not inf

The workbench process reads the marker with :mod:`ast` (it never imports task code), so
its arguments must be literals (numbers or ``None`` for the bounds, ``True``/``False`` for
the flags); the launch check then refuses a value outside them. In the training process
``Annotated[int, ...]`` is an ordinary type hint: the dataclass sees an ``int``, and
:func:`workbench.project.fields_of` reads the same marker from the type hints.

**The trainer's ranges.** Some field names mean something to the trainer whatever the task
(:data:`TRAINER_RANGES`, the one table of them): a top-level ``Config`` field with such a
name and no ``Range`` of its own gets the trainer's range, so ``epochs=0`` or ``lr=nan``
is refused at launch instead of failing (or silently doing nothing) later. A declared
``Range`` replaces the trainer's.

Whatever the field's range, the launch check also refuses ``nan`` anywhere in a value, and
integers that SQLite cannot hold (outside the signed 64-bit range).

This module imports nothing heavy (no torch): ``workbench.Range`` loads it alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from types import MappingProxyType
from typing import Any

from workbench.project.errors import ConfigError

__all__ = [
    "SQLITE_INT_MAX",
    "SQLITE_INT_MIN",
    "TRAINER_RANGES",
    "Range",
    "check_value",
    "range_problem",
    "trainer_range",
]

SQLITE_INT_MIN = -(2**63)
"""The least integer SQLite stores (signed 64-bit)."""
SQLITE_INT_MAX = 2**63 - 1
"""The greatest integer SQLite stores (signed 64-bit)."""

Number = int | float


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Range:
    """The interval a numeric config field must lie in; ``None`` leaves a side open.

    Used as metadata in ``Annotated[int, Range(1, None)]``. Both bounds are inclusive
    unless ``low_open``/``high_open`` say otherwise: ``Range(0, None, low_open=True)`` is
    "``> 0``". A bound of ``float("inf")`` is the same as ``None``. An unbounded side
    admits ``inf`` (for a float field) unless ``finite`` is set; a finite bound refuses it.

    Args:
        low: The least allowed value, or ``None`` for no lower bound.
        high: The greatest allowed value, or ``None`` for no upper bound.
        low_open: ``low`` itself is refused (``> low`` rather than ``>= low``).
        high_open: ``high`` itself is refused (``< high`` rather than ``<= high``).
        finite: ``inf`` and ``-inf`` are refused.

    Raises:
        TypeError: A bound is not an int, a float or ``None`` (a bool is not a number
            here), or a flag is not a bool.
        ValueError: A bound is ``nan``, ``low`` is above ``high``, an open side has no
            bound, or the range holds no value (``Range(1, 1, low_open=True)``).
    """

    low: Number | None = None
    high: Number | None = None
    _: KW_ONLY
    low_open: bool = False
    high_open: bool = False
    finite: bool = False

    def __post_init__(self) -> None:
        for side in ("low", "high"):
            bound = getattr(self, side)
            if bound is not None and not _is_number(bound):
                raise TypeError(f"Range {side} must be a number or None, got {bound!r}")
            if bound is not None and math.isnan(bound):
                raise ValueError(f"Range {side} must not be nan")
        for flag in ("low_open", "high_open", "finite"):
            if type(getattr(self, flag)) is not bool:
                raise TypeError(f"Range {flag} must be True or False, got {getattr(self, flag)!r}")
        if self.low_open and self.low is None:
            raise ValueError("Range low_open needs a low bound")
        if self.high_open and self.high is None:
            raise ValueError("Range high_open needs a high bound")
        if self.low is not None and self.high is not None:
            if self.low > self.high:
                raise ValueError(f"Range low {self.low!r} is above high {self.high!r}")
            if self.low == self.high and (self.low_open or self.high_open):
                raise ValueError(f"Range holds no value: {self}")

    def __contains__(self, value: object) -> bool:
        """Whether a number lies in the range (``nan`` never does)."""
        if not _is_number(value) or math.isnan(value):  # type: ignore[arg-type]
            return False
        if self.finite and math.isinf(value):  # type: ignore[arg-type]
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):  # type: ignore[operator]
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)  # type: ignore[operator]

    def __str__(self) -> str:
        """The rule in words: ``>= 1``, ``> 0 and finite``, ``>= 0 and <= 1``, ``any number``."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low!r}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high!r}")
        if self.finite:
            parts.append("finite")
        return " and ".join(parts) or "any number"

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"low", "high", "low_open", "high_open", "finite", "text"}``.

        ``text`` is the rule in words (``str(range)``), for readers that only show it.
        """
        return {
            "low": self.low,
            "high": self.high,
            "low_open": self.low_open,
            "high_open": self.high_open,
            "finite": self.finite,
            "text": str(self),
        }


TRAINER_RANGES: Mapping[str, Range] = MappingProxyType(
    {
        # Task.max_epochs: fit runs this many epochs; 0 or less trains nothing and "completes".
        "epochs": Range(1, None),
        # Task.accumulate_grad_batches: batches per optimiser update; below 1 would be read as 1.
        "accumulate_grad_batches": Range(1, None),
        # Task.gradient_clip_val: the gradients' norm is clipped to it (None or 0: off); a
        # negative value would flip every gradient.
        "gradient_clip_val": Range(0, None),
        # Task.build_optimizer (Adam by default): 0 learns nothing, inf or 1e400 diverges at once.
        "lr": Range(0, None, low_open=True, finite=True),
        # Task.build_optimizer: Adam refuses a negative decay; inf diverges.
        "weight_decay": Range(0, None, finite=True),
        # Not read by Task itself, but the tasks pass it to DataModule, and every torch
        # DataLoader refuses a batch size below 1.
        "batch_size": Range(1, None),
        # ``seed`` is read by the trainer too, but random, numpy and torch take any integer
        # SQLite can hold (the check every integer gets), so it has no entry.
    }
)
"""The ranges the trainer gives to top-level ``Config`` fields of these names.

The one table of them: discovery (:mod:`workbench.project._link`) and the runtime side
(:func:`workbench.project.fields_of`) both read it through :func:`trainer_range`.
"""


def trainer_range(name: str) -> Range | None:
    """The trainer's range for a config field, or ``None``.

    Args:
        name: The field's dotted name. Only top-level fields (no dot) have one: the
            trainer reads ``config.epochs``, never ``config.optim.epochs``.

    Returns:
        The range from :data:`TRAINER_RANGES`, or ``None``.
    """
    return TRAINER_RANGES.get(name)


def range_problem(value: Any, allowed: Range | None) -> tuple[str, Any, str] | None:
    """Find the first number in ``value`` that a launch must refuse.

    Numbers are checked where they stand: the value itself, or the items of a list, tuple
    or dict (dict values), at any depth.

    Args:
        value: A config value, after its type check.
        allowed: The field's range, or ``None``.

    Returns:
        ``None`` when the value is acceptable, else ``(where, number, why)``: ``where``
        is ``""`` for the value itself or an index suffix such as ``"[1]"`` or
        ``"['a']"``, and ``why`` the rule broken, e.g. ``"must be >= 1"``.
    """
    if type(value) is bool:
        return None
    if _is_number(value):
        if isinstance(value, float) and math.isnan(value):
            return "", value, "not a number"
        if isinstance(value, int) and not SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
            return "", value, f"integers must lie between {SQLITE_INT_MIN} and {SQLITE_INT_MAX} (SQLite's range)"
        if allowed is not None and value not in allowed:
            return "", value, f"must be {allowed}"
        return None
    if isinstance(value, (list, tuple)):
        items: Any = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    else:
        return None
    for index, item in items:
        found = range_problem(item, allowed)
        if found is not None:
            return f"[{index!r}]{found[0]}", found[1], found[2]
    return None


def check_value(key: str, value: Any, allowed: Range | None, *, typed: str | None = None) -> None:
    """Refuse a value outside its field's range, ``nan``, or an int SQLite cannot hold.

    Args:
        key: The field's dotted name, for the message.
        value: The value, after its type check.
        allowed: The field's range, or ``None``.
        typed: The text the user typed, when there is one: a float too large to hold
            (``1e400``, read as ``inf``) is then shown as typed.

    Raises:
        ConfigError: One line naming the field, the value and the rule, e.g.
            ``epochs=0 is out of range: must be >= 1``.
    """
    found = range_problem(value, allowed)
    if found is None:
        return
    where, number, why = found
    if why == "not a number":
        rule = f"; it must be {allowed}" if allowed is not None else ""
        raise ConfigError(f"{key}{where}=nan is not a number{rule}")
    shown = _show(number)
    if typed and not where and isinstance(number, float) and math.isinf(number) and "inf" not in typed.lower():
        shown = f"{_show(typed.strip())} (too large for a float: read as {number!r})"
    raise ConfigError(f"{key}{where}={shown} is out of range: {why}")
