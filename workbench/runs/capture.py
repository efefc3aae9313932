"""Scalars read from a script's output lines (pure: no files, no index).

A script launched from ``[scripts.NAME]`` reports nothing to the workbench; its output
does. Each line of ``output.log`` goes through :meth:`Capture.feed`, which returns the
points it holds. Recognised out of the box:

- the configured ``pattern`` (``[scripts.NAME.capture]``): its named groups that hold a
  number are the line's values;
- pipe-separated fields, as pytorch/examples and fairseq print them:
  ``| epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch 45.21 | loss  7.63 | ppl  2065.36``
  gives ``epoch``, ``lr``, ``ms/batch``, ``loss`` and ``ppl``;
  ``| end of epoch   1 | time: 12.34s | valid loss  5.80 | valid ppl   330.25`` gives
  ``epoch``, ``time``, ``valid_loss`` and ``valid_ppl``;
- Guild's conventions: a line ``key: value``, or ``key=value`` pairs on a line
  (``loss=0.3 acc=0.91``).

The configured pattern is tried first; a line it does not match still goes through the
conventions. Steps: ``step = "auto"`` numbers the lines that gave points 1, 2, 3 …; a
named group as ``step`` takes the step from that group (lines without it keep the last
step). A ``step`` key in a convention line (``step: 120``) sets the step for the lines
that follow, Guild-style (``auto`` then stops counting).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = ["Capture", "parse_line"]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
# "| lr 20.00 " / "| valid loss  5.80 " / "| time: 12.34s " / "| ms/batch 45.21 "
_FIELD = re.compile(rf"^(?P<key>[A-Za-z][\w/.\- ]*?)\s*[:=]?\s+(?P<value>{_NUMBER})\s*(?:s|ms|%)?$", re.IGNORECASE)
_COLON = re.compile(rf"^\s*(?P<key>[A-Za-z_][\w/.\-]*)\s*:\s*(?P<value>{_NUMBER})\s*$", re.IGNORECASE)
_PAIR = re.compile(rf"(?:^|[\s,;(\[])(?P<key>[A-Za-z_][\w/.\-]*)=(?P<value>{_NUMBER})(?=$|[\s,;)\]])",
                   re.IGNORECASE)
_STEP_KEY = "step"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value


def _key(text: str) -> str:
    words = text.strip().lower().split()
    if len(words) > 1 and words[-1] == "epoch":  # "end of epoch 1": the epoch
        return "epoch"
    return "_".join(words)


def _pipes(line: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in line.split("|"):
        found = _FIELD.match(part.strip())
        if found:
            value = _number(found.group("value"))
            if value is not None:
                out[_key(found.group("key"))] = value
    return out


def parse_line(line: str, pattern: re.Pattern[str] | None = None) -> dict[str, float]:
    """The values one output line holds (see the module's docstring), by key.

    Args:
        line: One line, with or without its newline.
        pattern: The configured pattern, if any.

    Returns:
        Key -> value; empty when the line holds none.
    """
    line = line.rstrip("\r\n")
    if pattern is not None:
        found = pattern.search(line)
        if found:
            values = {k: v for k, text in found.groupdict().items()
                      if text is not None and (v := _number(text)) is not None}
            if values:
                return values
    if line.count("|") >= 2:
        values = _pipes(line)
        if values:
            return values
    found = _COLON.match(line)
    if found:
        value = _number(found.group("value"))
        return {found.group("key"): value} if value is not None else {}
    return {m.group("key"): v for m in _PAIR.finditer(line) if (v := _number(m.group("value"))) is not None}


@dataclass
class Capture:
    """Turns output lines into ``(key, value, step)`` points.

    Args:
        pattern: The configured regular expression ("" for none).
        step: ``"auto"`` or a named group of ``pattern``.
    """

    pattern: str = ""
    step: str = "auto"
    lines: int = 0
    current: int = 0
    _explicit: bool = field(default=False, repr=False)
    _compiled: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._compiled = re.compile(self.pattern) if self.pattern else None

    def feed(self, line: str) -> list[tuple[str, float, int]]:
        """The points of one line (none for most lines)."""
        values = parse_line(line, self._compiled)
        if not values:
            return []
        self.lines += 1
        explicit = values.pop(_STEP_KEY, None) if self.step == "auto" else values.pop(self.step, None)
        if explicit is not None and math.isfinite(explicit):
            self.current, self._explicit = int(explicit), True
        elif self.step == "auto" and not self._explicit:
            self.current = self.lines
        if not values:
            return []
        return [(key, value, self.current) for key, value in values.items()]
