"""Ranges for config fields, declared statically: ``epochs: Annotated[int, Range(1, None)]``.

A task declares the allowed values of its own numeric fields in its ``Config``::

    from typing import Annotated
    from workbench import Range

    @dataclass
    class Config:
        epochs: Annotated[int, Range(1, None)] = 10        # >= 1
        lr: Annotated[float, Range(low=0.0, high=1.0)] = 0.1  # 0 <= lr <= 1

The workbench process reads the marker with :mod:`ast` (it never imports task code), so
its bounds must be literal numbers or ``None``; the launch check then refuses a value
outside them. In the training process ``Annotated[int, ...]`` is an ordinary type hint:
the dataclass sees an ``int``.

Whatever the field's range, the launch check also refuses ``nan`` anywhere in a value, and
integers that SQLite cannot hold (outside the signed 64-bit range).

This module imports nothing heavy (no torch): ``workbench.Range`` loads it alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.project.errors import ConfigError

__all__ = ["SQLITE_INT_MAX", "SQLITE_INT_MIN", "Range", "check_value", "range_problem"]

SQLITE_INT_MIN = -(2**63)
"""The least integer SQLite stores (signed 64-bit)."""
SQLITE_INT_MAX = 2**63 - 1
"""The greatest integer SQLite stores (signed 64-bit)."""

Number = int | float


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Range:
    """The closed interval a numeric config field must lie in; ``None`` leaves a side open.

    Used as metadata in ``Annotated[int, Range(1, None)]``. Both bounds are inclusive. A
    bound of ``float("inf")`` is the same as ``None``; an open upper side admits ``inf``
    (for a float field), a finite one refuses it.

    Args:
        low: The least allowed value, or ``None`` for no lower bound.
        high: The greatest allowed value, or ``None`` for no upper bound.

    Raises:
        TypeError: A bound is not an int, a float or ``None`` (a bool is not a number here).
        ValueError: A bound is ``nan``, or ``low`` is above ``high``.
    """

    low: Number | None = None
    high: Number | None = None

    def __post_init__(self) -> None:
        for side in ("low", "high"):
            bound = getattr(self, side)
            if bound is not None and not _is_number(bound):
                raise TypeError(f"Range {side} must be a number or None, got {bound!r}")
            if bound is not None and math.isnan(bound):
                raise ValueError(f"Range {side} must not be nan")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"Range low {self.low!r} is above high {self.high!r}")

    def __contains__(self, value: object) -> bool:
        """Whether a number lies in the range (``nan`` never does)."""
        if not _is_number(value) or math.isnan(value):  # type: ignore[arg-type]
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)  # type: ignore[operator]

    def __str__(self) -> str:
        """The rule in words: ``>= 1``, ``<= 10``, ``>= 0 and <= 1``, ``any number``."""
        parts = []
        if self.low is not None:
            parts.append(f">= {self.low!r}")
        if self.high is not None:
            parts.append(f"<= {self.high!r}")
        return " and ".join(parts) or "any number"

    def to_dict(self) -> dict[str, Number | None]:
        """Return ``{"low": ..., "high": ...}``."""
        return {"low": self.low, "high": self.high}


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


def check_value(key: str, value: Any, allowed: Range | None) -> None:
    """Refuse a value outside its field's range, ``nan``, or an int SQLite cannot hold.

    Args:
        key: The field's dotted name, for the message.
        value: The value, after its type check.
        allowed: The field's range, or ``None``.

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
    raise ConfigError(f"{key}{where}={_show(number)} is out of range: {why}")
