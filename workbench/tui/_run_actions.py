"""The app's actions on runs: launch, stop, resume, fork, delete and verify, each in a thread.

Screens post requests (``LaunchRequested``, ``StopRequested``, ...); these handlers do the
work in thread workers, never on the event loop, and answer with a fact (``RunLaunched``,
``RunStopped``, ...) or a one-line refusal (``ActionRefused``), shown as a notification. A
mixin of :class:`~workbench.tui.app.WorkbenchApp`, kept apart to keep the app's module short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from workbench.errors import WorkbenchError
from workbench.runs import probe_devices
from workbench.tui._state import Changes
from workbench.tui.messages import (
    ActionRefused,
    BatchDone,
    BatchRequested,
    DeleteRequested,
    ExportDone,
    ForkRequested,
    LaunchFailed,
    LaunchRequested,
    ResumeRequested,
    RunDeleted,
    RunLaunched,
    RunResumed,
    RunStopped,
    RunVerified,
    StopRequested,
    VerifyRequested,
)

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.store import RunIndex
    from workbench.tui._state import RunCache, SeriesCache
    from workbench.tui.widgets.run_table import Selection

__all__ = ["RunActionsMixin"]


class RunActionsMixin:
    """Handlers of the requests screens post about runs (mixed into the app)."""

    # Provided by the app.
    project: Project
    probe: dict[str, Any] | None
    runs: RunCache
    selection: Selection
    series: SeriesCache
    index: RunIndex
    screen: Any
    post_message: Any
    notify: Any
    request_tick: Any
    run_name: Any
    _hand_down: Any

    def on_launch_requested(self, message: LaunchRequested) -> None:
        self._launch(message.request)

    @work(thread=True, group="launch")
    def _launch(self, request: Any) -> None:
        from workbench.runs import launch

        try:
            probe = self.probe or probe_devices(self.project.state_dir)
            row = launch(self.project, request, index=self.index, probe=probe)
        except WorkbenchError as exc:
            self.post_message(LaunchFailed(str(exc)))
            return
        except Exception as exc:  # a launch must never take the app down
            self.post_message(LaunchFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(RunLaunched(row))

    def on_run_launched(self, message: RunLaunched) -> None:
        self.runs.apply([message.row])
        self._hand_down(Changes(runs={message.row.id}))
        from workbench.tui.screens.launch import LaunchForm

        if isinstance(self.screen, LaunchForm):
            self.screen.dismiss(message.row.id)
        self._select(message.row.id)
        self.notify(f"launched {message.row.name or message.row.id} ({message.row.task})")
        self.request_tick()

    def on_launch_failed(self, message: LaunchFailed) -> None:
        from workbench.tui.screens.launch import LaunchForm

        if isinstance(self.screen, LaunchForm):
            self.screen.show_failure(message.message)
        else:
            self.notify(message.message, title="Launch failed", severity="error")

    def _select(self, run_id: str) -> None:
        select = getattr(self.screen, "select_run", None)
        if select is not None:
            select(run_id)

    def on_stop_requested(self, message: StopRequested) -> None:
        self._stop(message.run_id, message.kill)

    @work(thread=True, group="actions")
    def _stop(self, run_id: str, kill: bool = False) -> None:
        from workbench.runs import stop_run

        row = self.index.get_run(run_id)
        if row is None:
            self.post_message(ActionRefused("stop", f"run {run_id} is gone"))
            return
        try:
            result = stop_run(self.index, row, kill=kill)
        except WorkbenchError as exc:
            self.post_message(ActionRefused("stop", str(exc)))
            return
        self.post_message(RunStopped(run_id, result.outcome, result.message))

    def on_run_stopped(self, message: RunStopped) -> None:
        self.notify(message.text, severity="information" if message.outcome == "requested" else "warning")
        self.request_tick()

    def on_resume_requested(self, message: ResumeRequested) -> None:
        self._resume(message.run_id)

    @work(thread=True, group="actions")
    def _resume(self, run_id: str) -> None:
        from workbench.runs import resume_run

        row = self.index.get_run(run_id)
        if row is None:
            self.post_message(ActionRefused("resume", f"run {run_id} is gone"))
            return
        try:
            new = resume_run(self.project, self.index, row,
                             waiting=lambda text: self.call_from_thread(self.notify, text))
        except WorkbenchError as exc:
            self.post_message(ActionRefused("resume", str(exc)))
            return
        except Exception as exc:
            self.post_message(ActionRefused("resume", f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(RunResumed(new))

    def on_fork_requested(self, message: ForkRequested) -> None:
        self._fork(message)

    @work(thread=True, group="actions")
    def _fork(self, message: ForkRequested) -> None:
        from workbench.runs import fork_run

        run_id = message.run_id
        row = self.index.get_run(run_id)
        if row is None:
            self.post_message(ActionRefused("fork", f"run {run_id} is gone"))
            return
        try:
            new = fork_run(self.project, self.index, row, overrides=tuple(message.overrides),
                           checkpoint=message.checkpoint, code=message.code, device=message.device,
                           precision=message.precision, name=message.name, tags=message.tags, probe=self.probe)
        except WorkbenchError as exc:
            self.post_message(ActionRefused("fork", str(exc)))
            return
        except Exception as exc:
            self.post_message(ActionRefused("fork", f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(RunResumed(new, forked_from=run_id))

    def on_run_resumed(self, message: RunResumed) -> None:
        self.runs.apply([message.row])
        self._hand_down(Changes(runs={message.row.id}))
        name = message.row.name or message.row.id
        if message.forked_from:
            self.notify(f"forked {self.run_name(message.forked_from)} as {name}")
            self._select(message.row.id)
        else:
            verb = "restarted" if message.row.kind == "script" else "resumed"
            self.notify(f"{verb} {name} (attempt {message.row.attempt})")
        self.request_tick()

    def on_delete_requested(self, message: DeleteRequested) -> None:
        self._delete(message.run_id)

    @work(thread=True, group="actions")
    def _delete(self, run_id: str) -> None:
        from workbench.runs import remove_run

        row = self.index.get_run(run_id)
        if row is None:
            self.post_message(RunDeleted(run_id))
            return
        try:
            remove_run(self.project, self.index, row)
        except WorkbenchError as exc:
            self.post_message(ActionRefused("delete", str(exc)))
            return
        self.post_message(RunDeleted(run_id))

    def on_run_deleted(self, message: RunDeleted) -> None:
        name = self.run_name(message.run_id)
        self.runs.remove(message.run_id)
        self.selection.forget(message.run_id)
        self.series.forget_run(message.run_id)
        self._hand_down(Changes(removed={message.run_id}))
        self.notify(f"deleted {name}")

    def on_verify_requested(self, message: VerifyRequested) -> None:
        self._verify(message.run_id)

    @work(thread=True, group="verify")
    def _verify(self, run_id: str) -> None:
        """Run ``workbench verify RUN`` as its own process (in its own session: quitting the
        app does not end it, and its verdict still lands in the run's history); wait for it
        here and report its verdict."""
        import subprocess
        import sys
        from pathlib import Path

        row = self.index.get_run(run_id)
        if row is None:
            self.post_message(ActionRefused("verify", f"run {run_id} is gone"))
            return
        folder = Path(row.run_dir) if row.run_dir else self.project.runs_dir / run_id
        log_path = folder / "verify.log"
        try:
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "workbench.cli", "--project", str(self.project.root), "verify", run_id],
                    cwd=str(self.project.root), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
        except OSError as exc:
            self.post_message(ActionRefused("verify", f"cannot start workbench verify: {exc}"))
            return
        code = proc.wait()
        try:
            lines = [line.strip() for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                     if line.strip()]
        except OSError:
            lines = []
        text = lines[-1] if lines else f"workbench verify exited with {code}"
        verdict = next((line for line in lines if line.startswith("verified")), None)
        self.post_message(RunVerified(run_id, code == 0, verdict or text))

    def on_run_verified(self, message: RunVerified) -> None:
        name = self.run_name(message.run_id)
        self.notify(message.text, title=f"Verify {name}", severity="information" if message.ok else "warning",
                    timeout=12)
        self.request_tick()

    def on_action_refused(self, message: ActionRefused) -> None:
        self.notify(message.reason, title=f"Cannot {message.action}", severity="warning")

    # -- batches: one action on the marked runs ------------------------------------------

    def on_batch_requested(self, message: BatchRequested) -> None:
        self._run_batch(message.action, list(message.run_ids), list(message.add), list(message.remove))

    @work(thread=True, group="actions")
    def _run_batch(self, action: str, run_ids: list[str], add: list[str], remove: list[str]) -> None:
        from workbench.runs import remove_run, resume_run, stop_run

        done: list[str] = []
        rows: list[Any] = []
        failed: list[tuple[str, str]] = []
        for run_id in run_ids:
            row = self.index.get_run(run_id)
            if row is None:
                failed.append((run_id, "it is gone"))
                continue
            try:
                if action in ("stop", "kill"):
                    stop_run(self.index, row, kill=action == "kill")
                elif action == "resume":
                    rows.append(resume_run(self.project, self.index, row))
                elif action == "delete":
                    remove_run(self.project, self.index, row)
                elif action == "tag":
                    tags = [t for t in row.tags if t not in remove] + [t for t in add if t not in row.tags]
                    self.index.update_run(run_id, tags=list(dict.fromkeys(tags)))
                    rows.append(self.index.get_run(run_id) or row)
                else:
                    raise WorkbenchError(f"unknown action {action!r}")
            except WorkbenchError as exc:
                failed.append((run_id, str(exc)))
                continue
            except Exception as exc:  # one run's failure never stops the batch, nor the app
                failed.append((run_id, f"{type(exc).__name__}: {exc}"))
                continue
            done.append(run_id)
        self.post_message(BatchDone(action, done, rows, failed))

    def on_batch_done(self, message: BatchDone) -> None:
        from workbench.tui.screens._batch import VERBS

        names = [self.run_name(i) for i in message.done]
        if message.action == "delete":
            for run_id in message.done:
                self.runs.remove(run_id)
                self.selection.forget(run_id)
                self.series.forget_run(run_id)
            self._hand_down(Changes(removed=set(message.done)))
        if message.rows:
            self.runs.apply(message.rows)
            self._hand_down(Changes(runs={r.id for r in message.rows}))
        verb = VERBS[message.action][1]
        if message.action == "stop":
            verb = "asked to stop"
        text = f"{verb} {len(names)} run{'s' if len(names) != 1 else ''}"
        if names:
            text += ": " + ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        if message.failed:
            text += "\nfailed: " + "; ".join(f"{self.run_name(i)}: {why}" for i, why in message.failed)
        self.notify(text, title=f"{VERBS[message.action][0]} marked runs",
                    severity="warning" if message.failed else "information", timeout=10)
        self.request_tick()

    def export_marked(self) -> None:
        """Export the marked runs (as `workbench export --format csv`) into a new folder under
        ``.workbench/exports/`` — inside the state folder, so never part of a code snapshot."""
        import time
        from pathlib import Path

        ids = [i for i in self.selection.marked if i in self.runs.rows]
        if not ids:
            self.notify("mark runs with space first, then export them", title="Export", severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
        folder = Path(self.project.state_dir) / "exports" / f"runs-{stamp}"
        self._export(ids, folder)

    @work(thread=True, group="actions")
    def _export(self, run_ids: list[str], folder: Any) -> None:
        from workbench.runs.export import export_runs

        rows = [r for r in (self.index.get_run(i) for i in run_ids) if r is not None]
        try:
            result = export_runs(self.index, rows, "csv", folder)
        except WorkbenchError as exc:
            self.post_message(ExportDone(str(folder), error=str(exc)))
            return
        except OSError as exc:
            self.post_message(ExportDone(str(folder), error=str(exc.strerror or exc)))
            return
        self.post_message(ExportDone(str(folder), result.runs, result.points))

    def on_export_done(self, message: ExportDone) -> None:
        from workbench.runs import present

        where = present.tilde(message.folder)
        if message.error:
            self.notify(f"{where}: {message.error}", title="Export failed", severity="error", timeout=12)
        else:
            self.notify(f"{message.runs} runs, {message.points} points → {where} (runs.csv, metrics.csv, "
                        "events.csv; as `workbench export --format csv`)", title="Exported", timeout=15)

