"""The main screen: tasks, the live run table, and the selected run's curve and log.

With runs marked (space), the curve and log give way to the overlay: the marked runs (and the
pinned one, drawn on top) in a grid of charts, a key per chart, as many as the terminal holds
(``[`` ``]`` page, ``M`` filters the keys). ``l`` ``x`` ``e`` ``y`` ``+`` ``-`` ``0`` change every
chart. ``1``–``4`` jump to the tasks, the runs, the charts and the log (as lazygit's panes);
the focused pane's title is highlighted. ``E`` exports the marked runs (or the selected one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Input, OptionList, RichLog, Static

from workbench.runs import present
from workbench.tui._state import Changes
from workbench.tui.messages import RunHighlighted, RunOpenRequested, TaskLaunchRequested
from workbench.tui.screens._actions import RunActions
from workbench.tui.screens._footer import Footer, fit_footer
from workbench.tui.screens._main_charts import LIVE_KEYS, ChartPane, grid_shape
from workbench.tui.widgets._kept import KeptHorizontal, KeptStatic, KeptVertical
from workbench.tui.widgets._plotting import ChartOptions
from workbench.tui.widgets.chart import MetricChart
from workbench.tui.widgets.chart_grid import ChartGrid
from workbench.tui.widgets.run_table import RunTable
from workbench.tui.widgets.task_list import TaskList
from workbench.tui._typed import workbench_app

__all__ = ["LIVE_KEYS", "MainScreen", "grid_shape"]

class MainScreen(ChartPane, RunActions, Screen[None]):
    """Tasks on the left, runs on the right, the selected run's curve and log below."""

    HELP_TITLE = "Main screen"
    _ready = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_run", "New run"),
        Binding("enter", "open", "Open", show=False),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("p", "pin", "Pin", show=False),
        Binding("s", "stop", "Stop"),
        Binding("K", "kill", "Kill", show=False),
        Binding("r", "resume", "Resume"),
        Binding("f", "fork", "Fork"),
        Binding("C", "clone", "Clone", show=False),
        Binding("w", "sweep", "Sweep", show=False),
        Binding("v", "verify", "Verify", show=False),
        Binding("d", "delete", "Delete"),
        Binding("t", "tag", "Tag", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("m", "next_metric", "Next metric", show=False),
        Binding("M", "filter_keys", "Metric keys", show=False),
        Binding("left_square_bracket", "page(-1)", "Previous charts", key_display="[", show=False),
        Binding("right_square_bracket", "page(1)", "Next charts", key_display="]", show=False),
        Binding("l", "log_scale", "Log scale", show=False),
        Binding("x", "x_axis", "Step/time", show=False),
        Binding("e", "smoothing", "Smoothing", show=False),
        Binding("y", "skip_start", "Y range without the start", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in: half the steps, around the cursor", key_display="+",
                show=False),
        Binding("minus", "zoom(2)", "Zoom out: twice the steps", key_display="-", show=False),
        Binding("0", "zoom(0)", "Zoom reset: every step", key_display="0", show=False),
        Binding("1", "pane('tasks')", "Go to the tasks pane", show=False),
        Binding("2", "pane('runs')", "Go to the runs pane", show=False),
        Binding("3", "pane('charts')", "Go to the chart pane (the overlay's first chart)", show=False),
        Binding("4", "pane('log')", "Go to the output log pane", show=False),
        Binding("E", "export", "Export", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="main")
        self._run_id: str | None = None
        self._metric_choice: dict[str, str] = {}
        self._log_seen = 0
        self._log_run: str | None = None
        self._shown: dict[str, tuple[Any, ...]] = {}
        self.chart_options = ChartOptions()
        self.key_filter = ""
        self.overlay_ids: list[str] = []
        self._restore: tuple[Any, Any] | None = None
        self._title_for: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        app = workbench_app(self)
        self.chart_options.smoothing = app.settings.smoothing
        with KeptHorizontal(id="topbar"):
            yield KeptStatic(id="title")
            yield KeptStatic(id="summary")
        with KeptHorizontal(id="body"):
            with KeptVertical(id="tasks-panel"):
                yield KeptStatic(Content.assemble(("1 ", "dim"), "Tasks"), classes="panel-title")
                self._tasks = TaskList(id="tasks")
                yield self._tasks
            with KeptVertical(id="runs-panel"):
                yield KeptStatic(id="runs-title", classes="panel-title")
                yield Input(placeholder="filter: words  status:running  task:sine  tag:x  lr>0.01",
                            id="filter")
                self.table = RunTable(app.runs, app.run_colors, app.selection, clock=app.clock, id="runs")
                yield self.table
        with KeptHorizontal(id="live"):
            with KeptVertical(id="chart-panel"):
                yield Input(placeholder="metric keys: words or globs  loss  val/*  sys/", id="key-filter")
                self._chart = MetricChart(app.series, app.run_colors, app.run_name, app.request_tick,
                                          pinned=lambda: app.selection.pinned, options=self.chart_options,
                                          id="chart", pane="3")
                yield self._chart
                self._grid = ChartGrid(app.series, app.run_colors, app.run_name, app.request_tick,
                                       pinned=lambda: app.selection.pinned, options=self.chart_options, id="overlay",
                                       pane="3")
                yield self._grid
            with KeptVertical(id="log-panel"):
                yield KeptStatic(_log_title(None), id="log-title", classes="panel-title")
                yield RichLog(id="log", max_lines=500, wrap=True, markup=False, highlight=False, auto_scroll=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._ready = True
        self.query_one("#filter", Input).display = False
        self.query_one("#key-filter", Input).display = False
        self.query_one(ChartGrid).display = False
        self._update_title()
        self._update_runs_title()
        self.query_one(RunTable).focus()
        if self._restore is not None:
            self.restore_view(*self._restore)
        self.apply_changes(Changes())

    def on_unmount(self) -> None:
        workbench_app(self).save_view(main=self)  # quitting: what the debounce still holds

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < 100
        self.set_class(narrow, "narrow")
        self.set_class(event.size.height < 30, "short")
        fit_footer(self, {"fork", "delete"}, narrow)
        fit_footer(self.app, {"quit"}, narrow)
        self.query_one(ChartGrid).set_shape(*grid_shape(event.size.width, event.size.height))

    # -- the saved view --------------------------------------------------------------

    def restore_view(self, view: Any, settings: Any) -> None:
        """Show a saved view (``SavedView``; None: a fresh one) with the settings' defaults."""
        if not self._ready:
            self._restore = (view, settings)
            return
        self._restore = None
        options = self.chart_options
        options.smoothing = settings.smoothing
        if view is not None:
            options.x_axis, options.log_scale, options.skip_start = view.x_axis, view.log_scale, view.skip_start
            if view.smoothing is not None:
                options.smoothing = view.smoothing
            self._metric_choice = dict(view.metric_choice)
            if view.filter:
                self.query_one("#filter", Input).value = view.filter
            grid = self.query_one(ChartGrid)
            if view.key_filter:
                self.key_filter = view.key_filter
                field = self.query_one("#key-filter", Input)
                field.value = view.key_filter
                field.display = True  # a filter in force stays in sight
                grid.set_filter(view.key_filter)
            grid.restore_page(view.overlay_page)
        self.query_one(RunTable).data_changed(force=True)
        self._update_runs_title()
        self._update_overlay()
        self._options_changed(save=False)

    def fill_view(self, view: Any) -> None:
        """Put this screen's part of the view into ``view`` (a ``SavedView``)."""
        options = self.chart_options
        view.x_axis, view.log_scale, view.skip_start = options.x_axis, options.log_scale, options.skip_start
        view.smoothing = options.smoothing
        view.metric_choice = dict(self._metric_choice)
        view.key_filter = self.key_filter
        view.overlay_page = self._grid.saved_page  # (read while unmounting too: no query)

    def _view_changed(self) -> None:
        workbench_app(self).view_changed()

    # -- live data -------------------------------------------------------------------

    def apply_changes(self, changes: Changes) -> None:
        """Show what the last tick changed."""
        app = workbench_app(self)
        if not self._ready:
            return
        table = self.table  # (kept, not queried: a query walks the screen's DOM every tick)
        table.data_changed(force=bool(changes.last or changes.removed))
        missing = [i for i in table.visible_ids() if i not in app.runs.last]
        if missing:
            app.want_last(missing)
        tasks = self._tasks
        if app.discovery is not None or app.discovery_error:
            if getattr(tasks, "_shown", None) is not app.discovery:
                tasks.show(app.discovery, app.discovery_error)
                tasks._shown = app.discovery  # type: ignore[attr-defined]
        if changes.runs or changes.removed or not changes.logs:
            self._update_title()
            self._update_runs_title()
        if self._run_id in changes.last or self._run_id in changes.removed:
            self._show_run(self._run_id if self._run_id in app.runs.rows else table.current)
        self._update_overlay()
        if self.overlay_ids:
            self._grid.data_changed(changes.series)
        else:
            self._chart.data_changed(changes.series)
        if self._run_id in changes.logs:
            self._append_log()

    def _update_title(self) -> None:
        app = workbench_app(self)
        project = app.project
        counts = app.runs.counts()
        total = len(app.runs.rows)
        live = counts.get("running", 0) + counts.get("queued", 0)
        devices = ",".join((app.probe or {}).get("devices", [])) or ("probing devices…" if not app.probe_error else "no device probe")
        loading = "" if app.runs.complete else " (loading)"
        basis = (project.name, str(project.root), live, total, loading, devices)
        if basis == self._title_for:
            return  # (markup is parsed only when what it shows changed: this runs every tick)
        self._title_for = basis
        where = present.tilde(str(project.root))
        self._set("#title", Content.from_markup("[b]Workbench[/b] — $name [dim]($where)", name=project.name,
                                                where=where))
        self._set("#summary", Content.from_markup("[$primary b]$live running[/] · $total $runs$loading · [dim]$devices",
                                live=str(live), total=str(total), runs="run" if total == 1 else "runs",
                                                       loading=loading, devices=devices))

    def _update_runs_title(self) -> None:
        app = workbench_app(self)
        runs = app.runs
        parts: list[Any] = [("2 ", "dim"), ("Runs", "bold")]
        if runs.filter.text:
            parts += ["  ", (f"[/ {runs.filter.text}]", "$accent")]
            parts += [(f" {len(runs.view)} of {len(runs.rows)}", "dim")]
            if runs.filter.problems:
                parts += ["  ", (runs.filter.problems[0], "$error")]
        arrow = "▼" if runs.descending else "▲"
        marked = len(app.selection.marked)
        if marked:
            parts += ["  ", (f"◆ {marked} marked", "$accent")]
        parts += ["  ", (f"sort: {runs.sort} {arrow}", "dim")]
        self._set("#runs-title", Content.assemble(*parts))

    def _set(self, selector: str, content: Content) -> None:
        """Update a label only when its text changes (an update costs a layout pass)."""
        key = (content.plain, tuple(content.spans))
        if self._shown.get(selector) != key:
            self._shown[selector] = key
            self.query_one(selector, Static).update(content)

    # -- the selected run ------------------------------------------------------------

    def on_run_highlighted(self, message: RunHighlighted) -> None:
        self._show_run(message.run_id)

    def _show_run(self, run_id: str | None) -> None:
        app = workbench_app(self)
        chart = self.query_one("#chart", MetricChart)
        self._run_id = run_id
        row = app.runs.get(run_id)
        if row is None:
            chart.show(None, [], "")
            app.logs.drop(self)
            self._reset_log(None)
            return
        if run_id not in app.runs.last:
            app.want_last([run_id])
        if self.overlay_ids:
            chart.show(None, [], "")  # hidden under the overlay: it reads nothing
        else:
            chart.show(self._single_key(run_id), [run_id], row.name or run_id)
        if row.run_dir:
            app.logs.want(self, [run_id], {run_id: str(Path(row.run_dir) / "output.log")})
            if self._log_run != run_id:
                self._reset_log(run_id)
                app.request_tick()

    # -- the log ---------------------------------------------------------------------

    def _reset_log(self, run_id: str | None) -> None:
        log = self.query_one("#log", RichLog)
        log.clear()
        self._log_run = run_id
        self._log_seen = 0
        self.query_one("#log-title", Static).update(
            _log_title(None if run_id is None else self.app.run_name(run_id)))  # type: ignore[attr-defined]
        if run_id is not None:
            self._append_log()

    def _append_log(self) -> None:
        app = workbench_app(self)
        if self._log_run is None:
            return
        lines, total = app.logs.new_lines(self._log_run, self._log_seen)
        self._log_seen = total
        if lines:  # long lines wrap; the colours a run printed are kept
            self.query_one("#log", RichLog).write(Text.from_ansi("\n".join(lines)))

    def current_run_id(self) -> str | None:
        """The run under the table's cursor."""
        return self.query_one(RunTable).current

    def batch_runs(self) -> list[Any]:
        """The marked runs: with any marked, s K r d t act on all of them."""
        app = workbench_app(self)
        return [app.runs.rows[i] for i in app.selection.marked if i in app.runs.rows]

    def select_run(self, run_id: str) -> None:
        """Put the table's cursor on a run (after a launch or fork)."""
        table = self.query_one(RunTable)
        table.data_changed()
        table.select(run_id)
        table.focus()  # Enter now opens the new run

    def pin_changed(self) -> None:
        self.query_one(RunTable).refresh()
        self._update_overlay()
        self.query_one(ChartGrid).refresh_title()
        for chart in self.query(MetricChart):
            chart.data_changed(None)

    # -- keys ------------------------------------------------------------------------

    def action_new_run(self) -> None:
        """Open the launch form for the highlighted task (or the selected run's task)."""
        app = workbench_app(self)
        if app.discovery is None:
            self.app.notify("still discovering tasks…" if not app.discovery_error else app.discovery_error,
                            severity="warning")
            return
        tasks = self.query_one(TaskList)
        names = {t.name for t in app.discovery.launchable}
        task = tasks.current_task if tasks.has_focus else None
        if task is None:
            row = app.runs.get(self.current_run_id())
            task = row.task if row and row.task in names else tasks.current_task
        if task is None and app.discovery.launchable:
            task = app.discovery.launchable[0].name
        if task is None:
            self.app.notify("this project has no launchable task", severity="warning")
            return
        self.post_message(TaskLaunchRequested(task))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and not event.option.disabled:
            self.post_message(TaskLaunchRequested(event.option.id))

    def on_task_launch_requested(self, message: TaskLaunchRequested) -> None:
        from workbench.tui.screens.launch import LaunchForm

        self.app.push_screen(LaunchForm(message.task))

    def action_open(self) -> None:
        """Open the selected run (Enter)."""
        if self.current_run_id():
            self.post_message(RunOpenRequested(self.current_run_id()))  # type: ignore[arg-type]

    def on_run_open_requested(self, message: RunOpenRequested) -> None:
        from workbench.tui.screens.run import RunScreen

        message.stop()
        self.app.push_screen(RunScreen(message.run_id))

    def action_mark(self) -> None:
        """Mark or unmark the selected run for compare, then move down."""
        table = self.query_one(RunTable)
        if table.current is None:
            return
        workbench_app(self).selection.toggle(table.current)
        table.action_cursor(1)
        table.refresh()
        self._update_runs_title()
        self._update_overlay()

    def action_compare(self) -> None:
        """Compare the marked runs (at least two; mark with space)."""
        app = workbench_app(self)
        marked = [i for i in app.selection.marked if i in app.runs.rows]
        if len(marked) < 2:
            current = self.current_run_id()
            hint = "mark two or more runs with space, then press c"
            if len(marked) == 1 and current and current not in marked:
                marked.append(current)
            else:
                self.app.notify(hint, severity="warning")
                return
        from workbench.tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(marked))

    def action_sweep(self) -> None:
        """Open the sweep of the selected run: its trials ranked, counts, best curves, stop/resume."""
        row = workbench_app(self).runs.get(self.current_run_id())
        if row is None or not row.sweep_id:
            what = f"{row.label} is not a trial of a sweep" if row is not None else "no run selected"
            self.app.notify(f"{what} (a list in a launch form field starts one)", severity="warning")
            return
        from workbench.tui.screens.sweep import SweepScreen

        self.app.push_screen(SweepScreen(row.sweep_id))

    def action_filter(self) -> None:
        """Filter the runs: words, status:…, task:…, tag:…, config comparisons (lr>0.01)."""
        field = self.query_one("#filter", Input)
        field.display = True
        field.value = self.app.runs.filter.text  # type: ignore[attr-defined]
        field.focus()

    def action_clear_filter(self) -> None:
        """Clear the filter."""
        field = self.query_one("#filter", Input)
        if self.app.runs.filter.text or field.display:  # type: ignore[attr-defined]
            field.value = ""
            self._set_filter("")
            field.display = False
            self.query_one(RunTable).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        field = self.query_one("#filter", Input)
        field.display = False
        self.query_one(RunTable).focus()

    def _set_filter(self, text: str) -> None:
        app = workbench_app(self)
        app.runs.set_filter(text)
        self.query_one(RunTable).data_changed(force=True)
        self._update_runs_title()
        self._view_changed()

    def on_key(self, event: events.Key) -> None:
        if event.key != "escape":
            return
        if self.query_one("#filter", Input).has_focus:
            event.stop()
            self.action_clear_filter()
        elif self.query_one("#key-filter", Input).has_focus:
            event.stop()
            self._close_key_filter(clear=True)

    # -- charts (their keys: _main_charts.ChartPane) ---------------------------------

    @on(Input.Changed, "#key-filter")
    def _key_filter_changed(self, event: Input.Changed) -> None:
        self._set_key_filter(event.value)

    @on(Input.Submitted, "#key-filter")
    def _key_filter_done(self, event: Input.Submitted) -> None:
        self._close_key_filter(clear=False)

    def action_pane(self, pane: str) -> None:
        """Jump to a pane: 1 tasks, 2 runs, 3 the charts, 4 the output log."""
        if pane == "charts":
            grid = self.query(".grid-chart").results(MetricChart) if self.overlay_ids else iter(())
            target: Any = next(grid, None) or self.query_one("#chart", MetricChart)
        else:
            target = self.query_one({"tasks": "#tasks", "runs": "#runs", "log": "#log"}[pane])
        if pane == "log" and (self.overlay_ids or not self.query_one("#log-panel").display):
            why = "runs are marked: the overlay takes its place" if self.overlay_ids else "the terminal is narrow"
            self.app.notify(f"the output log is hidden ({why})", severity="warning", timeout=4)
            return
        target.focus()

    def action_export(self) -> None:
        """Export the marked runs (or the selected one) as `workbench export` does: format, path, confirm."""
        from workbench.tui.screens._export import ask_export

        app = workbench_app(self)
        rows = self.batch_runs() or [r for r in [app.runs.get(self.current_run_id())] if r is not None]
        ask_export(self, rows)

    def on_run_table_sort_changed(self, message: RunTable.SortChanged) -> None:
        self._update_runs_title()
        self._view_changed()


def _log_title(name: str | None) -> Content:
    return Content.assemble(("4 ", "dim"), "output.log" if name is None else f"output.log · {name}")

