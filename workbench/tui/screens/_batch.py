"""Which marked runs an action applies to, and what it does to each (htop's tag-then-act).

Pure functions over run rows (no textual): the confirmation lists the plan, the app then
does the action to the runs it applies to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.store import Run

__all__ = ["VERBS", "BatchPlan", "plan_batch"]

#: What each batch action is called in a question and in a notice.
VERBS = {"stop": ("Stop", "stopped"), "kill": ("Kill", "killed"), "resume": ("Resume", "resumed"),
         "delete": ("Delete", "deleted"), "tag": ("Tag", "tagged")}


@dataclass
class BatchPlan:
    """An action over several runs.

    Attributes:
        action: ``stop``, ``kill``, ``resume``, ``delete`` or ``tag``.
        apply: ``(run, what happens to it)`` for each run it applies to.
        skip: ``(run, why not)`` for each run it does not.
    """

    action: str
    apply: list[tuple[Run, str]] = field(default_factory=list)
    skip: list[tuple[Run, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per run: what happens to it, or that it is skipped and why."""
        return ([f"▸ {_name(r)} — {what}" for r, what in self.apply]
                + [f"  skipped: {_name(r)} — {why}" for r, why in self.skip])

    @property
    def question(self) -> str:
        """``Stop 3 marked runs?`` (and how many are skipped)."""
        n = len(self.apply)
        skipped = f" ({len(self.skip)} skipped)" if self.skip else ""
        return f"{VERBS[self.action][0]} {n} marked run{'s' if n != 1 else ''}?{skipped}"

    def refusal(self) -> str:
        """Why the action applies to none of the runs."""
        why = "; ".join(f"{_name(r)}: {reason}" for r, reason in self.skip[:4])
        more = f"; and {len(self.skip) - 4} more" if len(self.skip) > 4 else ""
        return f"none of the {len(self.skip)} marked runs can be {VERBS[self.action][1]} ({why}{more})"


def _name(row: Run) -> str:
    return row.name or row.id


def plan_batch(action: str, rows: list[Run]) -> BatchPlan:
    """What ``action`` does to each of ``rows``, and which it skips (with why)."""
    plan = BatchPlan(action)
    for row in rows:
        status = row.status
        why = ""
        what = ""
        if action in ("stop", "kill"):
            if not status.is_live:
                why = f"{status}; only a queued or running run can be {'stopped' if action == 'stop' else 'killed'}"
            elif action == "stop":
                what = "finishes its batch, saves a checkpoint, ends 'stopped'"
            else:
                what = "ends at once, without a checkpoint (work since the last one is lost)"
        elif action == "resume":
            if status.is_live:
                why = f"{status}; it is still going"
            elif not status.is_resumable:
                why = f"{status}; only stopped, interrupted or failed runs resume (fork it instead)"
            elif row.kind == "script":
                what = "restarts: the script runs again from the start (not an exact resume)"
            else:
                what = "resumes from its last checkpoint (a new attempt)"
        elif action == "delete":
            if status.is_live:
                why = f"{status}; stop it first"
            else:
                what = f"its metrics, folder ({row.run_dir or '—'}) and code snapshot are removed"
        elif action == "tag":
            what = "tags: " + (", ".join(row.tags) if row.tags else "none yet")
        else:
            raise ValueError(f"unknown batch action {action!r}")
        if why:
            plan.skip.append((row, why))
        else:
            plan.apply.append((row, what))
    return plan
