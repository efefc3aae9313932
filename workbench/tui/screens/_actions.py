"""Stop, resume, fork, clone, delete, verify, tag and pin: the actions on "the run this screen
points at" — or, on the main screen with runs marked, on every marked run (htop's tag-then-act:
one confirmation lists what happens to each, and which are skipped and why).

Shared by the main screen (the run under the table's cursor) and the run screen (its run).
Each action checks what it can at once and says why it refuses (an ``ActionRefused``
message, shown as a notification); the work itself is done by the app in a thread.
"""

from __future__ import annotations

from typing import Any

from workbench.store import Run
from workbench.tui.messages import (
    ActionRefused,
    BatchRequested,
    DeleteRequested,
    ResumeRequested,
    StopRequested,
    VerifyRequested,
)

__all__ = ["RunActions"]


class RunActions:
    """Mixin for a Screen whose ``current_run_id()`` names a run."""

    app: Any

    def current_run_id(self) -> str | None:  # pragma: no cover - each screen defines it
        raise NotImplementedError

    def batch_runs(self) -> list[Run]:
        """The runs a batch action applies to (the main screen: the marked ones); none here."""
        return []

    def _batch(self, action: str) -> bool:
        """With runs marked, ask once about ``action`` on all of them; returns whether it did."""
        rows = self.batch_runs()
        if not rows:
            return False
        from workbench.tui.screens._batch import plan_batch
        from workbench.tui.screens.confirm import ConfirmScreen

        plan = plan_batch(action, rows)
        if not plan.apply:
            self._refuse(action, plan.refusal())
            return True
        ids = [row.id for row, _ in plan.apply]

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(BatchRequested(action, ids))  # type: ignore[attr-defined]

        detail = "Unmark runs with space to leave them out." + (
            " This cannot be undone." if action == "delete" else "")
        self.app.push_screen(ConfirmScreen(plan.question, detail, yes=action.capitalize(), items=plan.lines()),
                             answered)
        return True

    def _current(self, action: str) -> Run | None:
        row = self.app.runs.get(self.current_run_id())
        if row is None:
            self.post_message(ActionRefused(action, "no run selected"))  # type: ignore[attr-defined]
        return row

    def _refuse(self, action: str, reason: str) -> None:
        self.post_message(ActionRefused(action, reason))  # type: ignore[attr-defined]

    def action_stop(self) -> None:
        """Stop the run (with runs marked: each of them) gracefully, after asking; it saves a checkpoint."""
        if self._batch("stop"):
            return
        row = self._current("stop")
        if row is None:
            return
        name = row.name or row.id
        if not row.status.is_live:
            self._refuse("stop", f"{name} is {row.status}; only a queued or running run can be stopped")
            return
        from workbench.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(StopRequested(row.id))  # type: ignore[attr-defined]

        self.app.push_screen(ConfirmScreen(
            f"Stop {name}?", "It finishes its batch, saves a checkpoint and ends as 'stopped'; "
            "resume it later with r.", yes="Stop"), answered)

    def action_kill(self) -> None:
        """End the run (with runs marked: each of them) at once, without a checkpoint, after asking."""
        if self._batch("kill"):
            return
        row = self._current("kill")
        if row is None:
            return
        name = row.name or row.id
        if not row.status.is_live:
            self._refuse("kill", f"{name} is {row.status}; only a queued or running run can be killed")
            return
        from workbench.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(StopRequested(row.id, kill=True))  # type: ignore[attr-defined]

        self.app.push_screen(ConfirmScreen(
            f"Kill {name} now?", "It ends at once, without a checkpoint: the work since its last "
            "checkpoint is lost. It can be resumed from that checkpoint. (s stops it gently.)",
            yes="Kill"), answered)

    def action_resume(self) -> None:
        """Resume a stopped, interrupted or failed run (with runs marked: each) from its last checkpoint."""
        if self._batch("resume"):
            return
        row = self._current("resume")
        if row is None:
            return
        name = row.name or row.id
        if not row.status.is_resumable:
            why = "it is still live" if row.status.is_live else "it finished"
            self._refuse("resume", f"{name} is {row.status} ({why}); only a stopped, interrupted or "
                         "failed run can be resumed — fork it with f instead")
            return
        if row.kind == "script":  # a script has no exact resume: say so before it starts over
            from workbench.tui.screens.confirm import ConfirmScreen

            def answered(yes: bool | None) -> None:
                if yes:
                    self.post_message(ResumeRequested(row.id))  # type: ignore[attr-defined]

            self.app.push_screen(ConfirmScreen(
                f"Restart {name}?", "A script run restarts: a new attempt runs the script again from the start, "
                "with the same code snapshot and parameters (or from its own newest checkpoint, if its "
                "[scripts] table declares resume). This is not an exact resume.", yes="Restart"), answered)
            return
        self.post_message(ResumeRequested(row.id))  # type: ignore[attr-defined]

    def action_verify(self) -> None:
        """Prove the run resumes exactly: replay it from a checkpoint and compare (asks first)."""
        row = self._current("verify")
        if row is None:
            return
        name = row.name or row.id
        if row.status.is_live:
            self._refuse("verify", f"{name} is {row.status}; verify replays a run that has ended")
            return
        if row.kind != "task":
            self._refuse("verify", f"{name} is a {row.kind} run; verify replays task runs from their checkpoints")
            return
        from workbench.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(VerifyRequested(row.id))  # type: ignore[attr-defined]
                self.app.notify(f"verifying {name}: replaying it from its oldest checkpoint in the "
                                "background; the verdict appears in its history", timeout=6)

        self.app.push_screen(ConfirmScreen(
            f"Verify {name}?", "A scratch attempt replays it from its oldest checkpoint with the same code, "
            "config and numerics, and compares every point and the final weights bit for bit. The run's "
            "own points are not touched. It takes about as long as the training after that checkpoint.",
            yes="Verify"), answered)

    def action_fork(self) -> None:
        """Start a new run from this run's checkpoint with edited config."""
        row = self._current("fork")
        if row is None:
            return
        if row.kind != "task":
            self._refuse("fork", f"{row.name or row.id} is a {row.kind} run; forking starts from a task run's "
                         "checkpoint — launch the script again with n")
            return
        from workbench.tui.screens.launch import LaunchForm

        self.app.push_screen(LaunchForm.for_fork(row))

    def action_clone(self) -> None:
        """New run from this run's config: the launch form, prefilled, with your current code."""
        row = self._current("clone")
        if row is None:
            return
        name = row.name or row.id
        if row.kind != "task":
            self._refuse("clone", f"{name} is a {row.kind} run; clone starts a new task run from a run's config")
            return
        discovery = self.app.discovery
        if discovery is None:
            self._refuse("clone", "still discovering tasks…")
            return
        if row.task not in {t.name for t in discovery.launchable}:
            self._refuse("clone", f"task {row.task} is no longer in the project (or cannot be launched)")
            return
        from workbench.tui.screens.launch import LaunchForm

        self.app.push_screen(LaunchForm.for_clone(row))

    def action_delete(self) -> None:
        """Delete the run (with runs marked: each of them) with its files and code snapshot, after asking."""
        if self._batch("delete"):
            return
        row = self._current("delete")
        if row is None:
            return
        name = row.name or row.id
        if row.status.is_live:
            self._refuse("delete", f"{name} is {row.status}; stop it first (s)")
            return
        from workbench.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(DeleteRequested(row.id))  # type: ignore[attr-defined]

        self.app.push_screen(ConfirmScreen(
            f"Delete {name}?", f"Its metrics, its folder ({row.run_dir or '—'}) and its code "
            "snapshot are removed. This cannot be undone.", yes="Delete"), answered)

    def action_tag(self) -> None:
        """Tag the marked runs (or the selected one): words add tags, -word removes one."""
        rows = self.batch_runs()
        if not rows:
            row = self._current("tag")
            if row is None:
                return
            rows = [row]
        from workbench.tui.screens.prompt import TextPrompt

        names = ", ".join(r.name or r.id for r in rows[:6]) + (f" and {len(rows) - 6} more" if len(rows) > 6 else "")
        shared = sorted(set.intersection(*(set(r.tags) for r in rows)))
        ids = [r.id for r in rows]

        def answered(text: str | None) -> None:
            words = (text or "").replace(",", " ").split()
            add = [w.lstrip("+") for w in words if not w.startswith("-") and w.lstrip("+")]
            remove = [w[1:] for w in words if w.startswith("-") and w[1:]]
            if add or remove:
                self.post_message(BatchRequested("tag", ids, add=add, remove=remove))  # type: ignore[attr-defined]

        self.app.push_screen(TextPrompt(
            f"Tag {len(rows)} run{'s' if len(rows) != 1 else ''}: {names}",
            "Words add tags, -word removes one (e.g. baseline -draft). "
            + (f"Tags they all have: {', '.join(shared)}." if shared else "They share no tag yet."),
            placeholder="tag -other-tag"), answered)

    def action_pin(self) -> None:
        """Pin the run: drawn on top in charts, the baseline of compare deltas (again: unpin)."""
        row = self._current("pin")
        if row is None:
            return
        selection = self.app.selection
        selection.pinned = None if selection.pinned == row.id else row.id
        self.app.notify(f"pinned {row.name or row.id}" if selection.pinned else "unpinned")
        self.pin_changed()

    def pin_changed(self) -> None:
        """Redraw what shows the pin (screens override)."""
