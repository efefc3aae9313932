"""The sweep view: a sweep's trials ranked by its metric, its counts, its best, and the best curves.

``w`` on a trial of a sweep (main screen) opens it. The header says what the sweep is (task,
kind, parameters, parallel, snapshot) and how its trials stand (status counts, the best so far
by the sweep's metric and direction); the table lists the trials best first with the varied
parameters as columns (as ``workbench sweep show``); below, the curves of the best few trials
overlaid. Enter opens a trial's run screen; ``s`` and ``r`` stop and resume the whole sweep
after a confirmation, through ``workbench.runs.sweep.stop_sweep`` / ``resume_sweep`` — what
``workbench sweep stop`` and ``resume`` call.

The trials come from the app's run cache (every tick updates them); the sweep's own row is
read in a thread when the screen opens and again when one of its trials changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from workbench.errors import WorkbenchError
from workbench.runs import present
from workbench.tui._state import Changes
from workbench.tui._sweeps import Trial, rank_trials, status_counts, sweep_metric, sweep_runs
from workbench.tui._typed import workbench_app
from workbench.tui.colors import theme_color
from workbench.tui.widgets._plotting import ChartOptions
from workbench.tui.widgets.chart import MetricChart
from workbench.tui.screens._footer import Footer

__all__ = ["BEST_N", "SweepActed", "SweepRead", "SweepScreen"]

#: How many of the best trials the charts overlay.
BEST_N = 5
#: The second chart's key: the first of these the trials log (the metric itself is the first chart).
_SECOND_KEYS = ("train/loss", "loss", "val/loss", "val/acc")
_STATUS_STYLE = {"running": "primary", "completed": "success", "failed": "error", "stopped": "warning",
                 "interrupted": "warning"}


@dataclass
class SweepRead(Message):
    """The sweep's row was read (``sweep`` None: it is gone; ``error``: why it could not be read)."""

    sweep: Any
    error: str = ""


@dataclass
class SweepActed(Message):
    """Stop or resume of the sweep finished: ``text`` says what it did to its trials."""

    action: str
    text: str
    ok: bool = True


class SweepScreen(Screen[None]):
    """One sweep: counts, best so far, its trials ranked by its metric, the best curves."""

    HELP_TITLE = "Sweep screen"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open trial"),
        Binding("s", "stop_sweep", "Stop sweep"),
        Binding("r", "resume_sweep", "Resume sweep"),
    ]

    def __init__(self, sweep_id: str) -> None:
        super().__init__(classes="sweep-screen")
        self.sweep_id = sweep_id
        self.sweep: Any = None
        self.run_ids: set[str] = set()
        self.trials: list[Trial] = []
        self.metric: str | None = None
        self.chart_options = ChartOptions()
        self._shown_rows: tuple[Any, ...] | None = None
        self._columns: tuple[str, ...] = ()
        self._ready = False

    def compose(self) -> ComposeResult:
        app = workbench_app(self)
        self.chart_options.smoothing = app.settings.smoothing
        yield Static(id="sweep-header")
        yield Static(id="sweep-spec")
        yield Static(id="sweep-counts")
        yield DataTable(id="sweep-trials", cursor_type="row", zebra_stripes=False)
        with Horizontal(id="sweep-charts"):
            for n in (1, 2):
                yield MetricChart(app.series, app.run_colors, app.run_name, app.request_tick,
                                  pinned=lambda: app.selection.pinned, options=self.chart_options,
                                  id=f"sweep-chart-{n}", classes="sweep-chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        app = workbench_app(self)
        self._ready = True
        self.run_ids = {r.id for r in sweep_runs(app.runs.rows.values(), self.sweep_id)}
        self.query_one("#sweep-header", Static).update(Content.from_markup("[b]Sweep[/b] [dim]$id — reading…",
                                                                          id=self.sweep_id))
        self.query_one(DataTable).focus()
        self._read_sweep()
        self._refresh()

    # -- reading ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sweep-read")
    def _read_sweep(self) -> None:
        app = workbench_app(self)
        try:
            self.post_message(SweepRead(app.index.get_sweep(self.sweep_id)))
        except Exception as exc:  # a busy index: shown, and read again at the next change
            self.post_message(SweepRead(self.sweep, f"{type(exc).__name__}: {exc}"))

    def on_sweep_read(self, message: SweepRead) -> None:
        if message.error:
            self.notify(f"could not read sweep {self.sweep_id}: {message.error}", severity="warning")
        self.sweep = message.sweep
        self._refresh(force=True)

    def apply_changes(self, changes: Changes) -> None:
        """Show what the last tick changed: trials' rows and last values, and their curves."""
        if not self._ready:
            return
        app = workbench_app(self)
        new = {i for i in changes.runs if (row := app.runs.rows.get(i)) is not None and row.sweep_id == self.sweep_id}
        touched = bool(new & self.run_ids) or bool(new - self.run_ids)
        self.run_ids |= new
        self.run_ids -= changes.removed
        if touched:
            self._read_sweep()  # its status may have changed with its trials'
        if touched or changes.last & self.run_ids or changes.removed:
            self._refresh()
        for chart in self.query(MetricChart):
            chart.data_changed(changes.series)

    # -- showing ---------------------------------------------------------------------

    def _refresh(self, force: bool = False) -> None:
        app = workbench_app(self)
        runs = sorted((app.runs.rows[i] for i in self.run_ids if i in app.runs.rows),
                      key=lambda r: (r.created_at, r.id))
        missing = [r.id for r in runs if r.id not in app.runs.last]
        if missing:
            app.want_last(missing)
        sweep = self.sweep
        spec = sweep.spec if sweep is not None else {}
        keys = list(spec.get("varied") or spec.get("keys") or [])
        self.metric = sweep_metric(sweep.metric if sweep is not None else None, app.runs.last, runs)
        direction = (sweep.direction if sweep is not None else None) or "min"
        self.trials = rank_trials(runs, keys, self.metric, direction, app.runs.last)
        self._show_header(runs, direction)
        self._show_table(keys, force)
        self._show_charts()

    def _show_header(self, runs: list[Any], direction: str) -> None:
        sweep = self.sweep
        header = self.query_one("#sweep-header", Static)
        if sweep is None:
            header.update(Content.from_markup("[b]Sweep[/b] $id [dim]— not in the index (deleted?)",
                                              id=self.sweep_id))
        else:
            name = f" ({sweep.name})" if sweep.name else ""
            header.update(Content.from_markup(
                "[b]Sweep $label[/b][dim]$name[/] — $task · $kind · [b]$status",
                label=sweep.name or sweep.id, name=f" {sweep.id}" if name else "", task=sweep.task, kind=sweep.kind,
                status=present.sweep_status(sweep.status, sweep.kind, status_counts(runs))))
            spec = sweep.spec
            parts = ["  ".join(spec.get("params", []))]
            if spec.get("fixed"):
                parts.append("fixed " + " ".join(spec["fixed"]))
            if spec.get("seed") is not None:
                parts.append(f"seed {spec['seed']}")
            parts.append(f"parallel {sweep.parallel}" if sweep.parallel else "parallel: the queue's limits")
            parts.append(f"snapshot {(sweep.snapshot_commit or '—')[:10]}")
            self.query_one("#sweep-spec", Static).update(Content(" · ".join(parts)))
        counts = status_counts(runs)
        total = spec_trials = len(runs)
        if sweep is not None and isinstance(sweep.spec.get("trials"), int):
            spec_trials = sweep.spec["trials"]
        parts_c: list[Any] = [(f"{total} trial{'s' if total != 1 else ''}", "bold")]
        if spec_trials > total:
            parts_c.append((f" of {spec_trials}", "dim"))
        if counts:
            parts_c.append(": ")
            parts_c.append(", ".join(f"{n} {status}" for status, n in counts.items()))
        best = self.trials[0] if self.trials and self.trials[0].value is not None else None
        if best is not None:
            params = " ".join(f"{k}={_param_text(v)}" for k, v in best.params.items())
            parts_c += ["   ", ("best ", "bold"), f"{self.metric} {best.value:.6g} ", (f"({direction}) ", "dim"),
                        (f"{best.run.label}{': ' + params if params else ''}", "$success")]
        elif self.metric:
            parts_c += ["   ", (f"best {self.metric} ({direction}): no value yet", "dim")]
        self.query_one("#sweep-counts", Static).update(Content.assemble(*parts_c))

    def _show_table(self, keys: list[str], force: bool) -> None:
        table = self.query_one(DataTable)
        columns = ("#", "name", "status", *keys, self.metric or "metric")
        rows = tuple((t.run.id, t.run.label, t.run.status.value, tuple(_param_text(t.params.get(k)) for k in keys),
                      t.value) for t in self.trials)
        if not force and columns == self._columns and rows == self._shown_rows:
            return
        current = self.current_trial_id()
        if columns != self._columns:
            table.clear(columns=True)
            for n, title in enumerate(columns):
                table.add_column(title, key=f"c{n}")
            self._columns = columns
        else:
            table.clear()
        self._shown_rows = rows
        best_id = self.trials[0].run.id if self.trials and self.trials[0].value is not None else None
        for n, trial in enumerate(self.trials, 1):
            run = trial.run
            status = run.status.value
            glyph = present.STATUS_GLYPHS.get(run.status, "?")
            value = "—" if trial.value is None else f"{trial.value:.6g}"
            table.add_row(
                str(n), Text(run.label, style=f"bold {workbench_app(self).run_colors.hex(run.id)}"),
                Text(f"{glyph} {status}", style=self._theme(_STATUS_STYLE.get(status, "foreground"))),
                *(_param_text(trial.params.get(k)) for k in keys),
                Text(value + (" ★" if run.id == best_id else ""), style="bold" if run.id == best_id else ""),
                key=run.id)
        if current is not None and current in self.run_ids:
            table.move_cursor(row=table.get_row_index(current))

    def _theme(self, name: str) -> str:
        return theme_color(self.app.theme_variables, name)

    def _show_charts(self) -> None:
        best = [t.run.id for t in self.trials if t.value is not None][:BEST_N]
        if not best:  # no values yet: the first trials, in the order made
            best = [t.run.id for t in self.trials][:BEST_N]
        app = workbench_app(self)
        logged = {k for i in best for k in app.runs.last.get(i, {})}
        first = self.metric
        second = next((k for k in _SECOND_KEYS if k in logged and k != first), None)
        title = f"best {len(best)}" if best else ""
        self.query_one("#sweep-chart-1", MetricChart).show(first, best if first else [], title)
        chart = self.query_one("#sweep-chart-2", MetricChart)
        chart.display = second is not None
        chart.show(second, best if second else [], title)

    # -- keys ------------------------------------------------------------------------

    def current_trial_id(self) -> str | None:
        """The trial under the table's cursor."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def action_open(self) -> None:
        """Open the trial under the cursor (its run screen)."""
        run_id = self.current_trial_id()
        if run_id is None:
            self.notify("this sweep has no trials yet", severity="warning")
            return
        from workbench.tui.screens.run import RunScreen

        self.app.push_screen(RunScreen(run_id))

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_stop_sweep(self) -> None:
        """Stop the sweep, after asking: waiting trials never start, running ones stop at a checkpoint."""
        if self.sweep is None:
            self.notify("the sweep is not read yet", severity="warning")
            return
        live = [t.run for t in self.trials if t.run.status.is_live]
        if not live:
            self.notify(f"sweep {self.sweep.label}: no trial is queued or running; nothing to stop",
                        severity="warning")
            return
        waiting = sum(r.status.value == "queued" for r in live)
        running = len(live) - waiting
        self._confirm("stop", f"Stop sweep {self.sweep.label}?",
                      f"{waiting} waiting trial(s) will not start; {running} running trial(s) stop gracefully "
                      "(each writes a checkpoint). `r` resumes the sweep later.")

    def action_resume_sweep(self) -> None:
        """Resume the sweep, after asking: stopped and interrupted trials resume, waiting ones start."""
        if self.sweep is None:
            self.notify("the sweep is not read yet", severity="warning")
            return
        resumable = [t.run for t in self.trials if t.run.status.is_resumable]
        if not resumable and self.sweep.kind != "optuna":
            self.notify(f"sweep {self.sweep.label}: no trial is stopped, interrupted or failed; nothing to resume",
                        severity="warning")
            return
        self._confirm("resume", f"Resume sweep {self.sweep.label}?",
                      f"{len(resumable)} trial(s) resume from their checkpoints through the queue (a trial stopped "
                      "before it started waits again); completed trials stay as they are.")

    def _confirm(self, action: str, question: str, detail: str) -> None:
        from workbench.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._act(action)

        self.app.push_screen(ConfirmScreen(question, detail, yes=action.capitalize()), answered)

    @work(thread=True, group="sweep-act")
    def _act(self, action: str) -> None:
        from workbench.runs.sweep import resume_sweep, stop_sweep

        app = workbench_app(self)
        try:
            sweep = app.index.get_sweep(self.sweep_id)
            if sweep is None:
                raise WorkbenchError(f"sweep {self.sweep_id} is gone")
            do = stop_sweep if action == "stop" else resume_sweep
            actions = do(app.project, app.index, sweep)
        except WorkbenchError as exc:
            self.post_message(SweepActed(action, f"{action} sweep: {exc}", ok=False))
            return
        except Exception as exc:  # never take the app down
            self.post_message(SweepActed(action, f"{action} sweep: {type(exc).__name__}: {exc}", ok=False))
            return
        counts: dict[str, int] = {}
        for a in actions:
            counts[a.action] = counts.get(a.action, 0) + 1
        done = ", ".join(f"{n} {what}" for what, n in counts.items()) or "no trial to act on"
        refused = [f"{a.run.label}: {a.message}" for a in actions if a.action == "refused"]
        self.post_message(SweepActed(action, f"sweep {sweep.label}: {done}" +
                                     (f" ({'; '.join(refused)})" if refused else "")))

    def on_sweep_acted(self, message: SweepActed) -> None:
        self.notify(message.text, severity="information" if message.ok else "error")
        self._read_sweep()
        workbench_app(self).request_tick()

    def action_back(self) -> None:
        """Back to the run table."""
        self.app.pop_screen()


def _param_text(value: Any) -> str:
    """A parameter's value for the table: floats in six significant digits (as ``sweep show``)."""
    return f"{value:.6g}" if isinstance(value, float) else present.value_text(value)
