"""How long a run actually ran: its attempts added up, without the time it sat stopped.

A run's ``started_at`` is its first start and ``ended_at`` its last end, so their difference
(the *wall span*) includes every pause between a stop and a resume. The attempts' own spans
come from the run's events: ``started`` opens one; ``completed``, ``failed``, ``stopped``,
``interrupted`` or ``pruned`` closes it (a ``resumed`` closes one whose end was never
recorded). Imports neither textual nor torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from workbench.runs import present
from workbench.store import Run, RunEvent

__all__ = ["Span", "attempt_spans", "ran_seconds", "ran_text"]

#: One attempt: when it started, and when it ended (None: not yet, or never recorded).
Span = tuple[float, float | None]

_ENDS = frozenset({"completed", "failed", "stopped", "interrupted", "pruned"})


def attempt_spans(events: Iterable[RunEvent]) -> list[Span]:
    """The run's attempts, oldest first, from its events."""
    spans: list[Span] = []
    for event in sorted(events, key=lambda e: (e.time, e.id)):
        open_ = bool(spans) and spans[-1][1] is None
        if event.kind == "started":
            if open_:  # a start while one is open: the last one's end was lost; end it here
                spans[-1] = (spans[-1][0], event.time)
            spans.append((event.time, None))
        elif open_ and (event.kind in _ENDS or event.kind == "resumed"):
            spans[-1] = (spans[-1][0], event.time)
    return spans


def ran_seconds(row: Run, spans: Sequence[Span] | None, now: float) -> float | None:
    """Seconds the run's attempts ran (the live one until ``now``), or its wall span when
    its attempts are not known (a first attempt's span is its wall span anyway)."""
    if not spans:
        return present.duration_s(row, now)
    total = 0.0
    for i, (start, end) in enumerate(spans):
        if end is None:
            last = i == len(spans) - 1
            end = (now if row.status.is_live else (row.ended_at or start)) if last else start
        total += max(0.0, end - start)
    return total


def ran_text(row: Run, spans: Sequence[Span] | None, now: float) -> str:
    """``ran 2m00s`` and, when it differs, ``· wall 1h01m over 2 attempts``."""
    ran = ran_seconds(row, spans, now)
    wall = present.duration_s(row, now)
    text = f"ran {present.seconds(ran)}"
    if spans and len(spans) > 1 and wall is not None and ran is not None and wall - ran >= 1:
        text += f" · wall {present.seconds(wall)} over {len(spans)} attempts"
    return text
