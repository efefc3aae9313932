"""Sweeps in the app: a launch form field read as a sweep parameter, and a sweep's trials ranked.

The form's rule (docs/tui.md, "Sweeps"): a field's text is a sweep parameter when it is a
distribution (``loguniform(1e-5, 1e-1)``, ``uniform``, ``intuniform``, ``choice(…)``), when
it has commas outside brackets and quotes (``1e-4, 1e-3``), or when it is a bracketed list
``[1e-4, 1e-3]`` in a field whose type does not take a list itself. In a field that takes a
list (``layers: list[int]``) ``[64, 64]`` stays the value, as ``-s layers=[64,64]`` does on
the command line; sweep such a field with commas between lists: ``[64, 64], [32]``. The
grammar is the CLI's ``-g`` (``workbench.runs.sweep_spec``): nothing is ``eval``'d.

Pure functions over typed records: no I/O, no Textual.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.runs.sweep_spec import (
    DISTRIBUTIONS,
    Distribution,
    Param,
    SweepSpecError,
    grid_size,
    labelled_items,
    parse_param,
    split_items,
)
from workbench.store import Run

__all__ = [
    "DEFAULT_TRIALS",
    "Trial",
    "check_items",
    "describe_sweep",
    "field_param",
    "rank_trials",
    "status_counts",
    "sweep_kind",
    "sweep_metric",
    "sweep_runs",
    "sweep_words",
    "takes_list",
]

#: The trials of a random search when the form's "trials" field is left empty.
DEFAULT_TRIALS = 10

_CALL = re.compile(r"\s*(" + "|".join(DISTRIBUTIONS) + r")\s*\(")


def takes_list(type_text: str) -> bool:
    """Whether a field of this annotation takes a list (or tuple, or any value) as its value."""
    from workbench.configtypes import _parse

    node = _parse(type_text)
    members = node[1] if node[0] == "union" else (node,)
    return any(m[0] in ("list", "tuple", "any") for m in members)


def field_param(name: str, type_text: str, text: str) -> Param | None:
    """The sweep parameter a form field's text describes, or None when it is one value.

    Raises:
        SweepSpecError: It reads as a sweep but a part is wrong (an empty item, an unknown
            distribution, low >= high, a log-scale bound <= 0), one line naming it.
    """
    text = text.strip()
    if not text:
        return None
    if _CALL.match(text):
        return parse_param(f"{name}={text}")
    try:
        items = split_items(text, name)
    except SweepSpecError:
        return None  # an unbalanced quote or bracket: one value (its field's type decides)
    if len(items) > 1:
        return parse_param(f"{name}={text}")
    if text.startswith("[") and text.endswith("]") and not takes_list(type_text):
        inner = text[1:-1].strip()
        if not inner:
            raise SweepSpecError(f"{name}: [] holds no values (a sweep needs at least one)")
        return parse_param(f"{name}={inner}")
    return None


def check_items(field: Any, param: Param, task_name: str) -> str:
    """Check each item (or each bound) of ``param`` against its field alone.

    Returns:
        The first refusal, naming the item in the form's words (``lr: item 2 (abc) is
        refused: expected float, got 'abc'``), or "".
    """
    from workbench.project import ConfigError, resolve_config

    for label, item in labelled_items(param):
        try:
            resolve_config([field], overrides=[f"{field.name}={item.text}"], task_name=task_name)
        except ConfigError as exc:
            why = str(exc).removeprefix(f"{field.name}: ")
            return f"{field.name}: {label} is refused: {why}"
    return ""


def sweep_kind(params: Sequence[Param]) -> str:
    """``random`` when any parameter is a continuous distribution (it needs a trial count), else ``grid``."""
    return "random" if any(isinstance(p, Distribution) for p in params) else "grid"


def describe_sweep(params: Sequence[Param], trials: int | None) -> tuple[int, str]:
    """How many runs the form's sweep makes, and the line that says so.

    A grid makes the product of its lists' sizes (``lr 3 × hidden 2 = 6 runs``); a random
    search makes ``trials`` runs, drawing each parameter (a list like ``choice``).
    """
    if sweep_kind(params) == "grid":
        count = grid_size(params)
        sizes = " × ".join(f"{p.key} {p.size}" for p in params)  # type: ignore[union-attr]
        formula = f"{sizes} = " if len(params) > 1 else f"{sizes} values: "
        return count, f"grid: {formula}{count:,} run{'s' if count != 1 else ''}"
    count = trials if trials is not None else DEFAULT_TRIALS
    drawn = ", ".join(p.describe().split("=", 1)[1] if isinstance(p, Distribution) else f"{p.size} values"
                      for p in params)
    keys = ", ".join(p.key for p in params)
    return count, f"random search: {count:,} trial{'s' if count != 1 else ''} drawing {keys} ({drawn})"


_G = re.compile(r"-g ([\w.]+): (.*?) is refused: \1: ")
_WORDS = (
    (re.compile(r": pass --yes to queue them all"), ": too many for the form (`workbench sweep --yes` queues more)"),
    (re.compile(r"--random(?: N)?(?![\w-])"), "trials"),
    (re.compile(r"--parallel(?![\w-])"), "parallel"),
    (re.compile(r"-g ([\w.]+):"), r"\1:"),
)


def sweep_words(message: str) -> str:
    """A sweep check's message in the form's words: ``-g lr: item 2 (abc) is refused: lr: …``
    → ``lr: item 2 (abc) is refused: …``; ``--parallel`` → ``parallel``."""
    message = _G.sub(r"\1: \2 is refused: ", message)
    for pattern, words in _WORDS:
        message = pattern.sub(words, message)
    return message


# -- the sweep view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One run of a sweep as the sweep view shows it: its varied parameters and its metric."""

    run: Run
    params: dict[str, Any]
    value: float | None


def sweep_runs(rows: Iterable[Run], sweep_id: str) -> list[Run]:
    """The runs that carry ``sweep_id``, in the order they were made."""
    return sorted((r for r in rows if r.sweep_id == sweep_id), key=lambda r: (r.created_at, r.id))


def sweep_metric(metric: str | None, last: Mapping[str, Mapping[str, float]], runs: Sequence[Run]) -> str | None:
    """The metric trials are ranked by: the sweep's, else the headline of what its runs log."""
    if metric:
        return metric
    from workbench.runs.present import headline_key

    return headline_key({k for r in runs for k in last.get(r.id, {})})


def rank_trials(runs: Sequence[Run], keys: Sequence[str], metric: str | None, direction: str | None,
                last: Mapping[str, Mapping[str, float]]) -> list[Trial]:
    """The trials, best first by the last logged value of ``metric`` (no value: last, in the order made)."""
    from workbench.runs.present import flatten_config

    trials = []
    for run in runs:
        flat = flatten_config(run.config)
        value = last.get(run.id, {}).get(metric) if metric else None
        trials.append(Trial(run, {k: flat.get(k) for k in keys}, value))
    sign = -1 if direction == "max" else 1
    trials.sort(key=lambda t: (t.value is None, sign * t.value if t.value is not None else 0.0))
    return trials


def status_counts(runs: Iterable[Run]) -> dict[str, int]:
    """``{status: count}`` in the order statuses go: queued, running, then the ended ones."""
    order = ("queued", "running", "completed", "pruned", "stopped", "interrupted", "failed")
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status.value] = counts.get(run.status.value, 0) + 1
    return {s: counts[s] for s in sorted(counts, key=lambda s: order.index(s) if s in order else len(order))}
