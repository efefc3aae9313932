"""The run screen: one run's overview, config, metrics, output, artifacts, code diff, system
metrics and logged images."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, RichLog, SelectionList, Static, TabbedContent, TabPane
from textual.widgets.selection_list import Selection

from workbench.runs import present
from workbench.runs.images import image_entries
from workbench.store import Run, RunEvent, RunStep
from workbench.tui._state import Changes
from workbench.tui._timing import attempt_spans, ran_text
from workbench.tui._watcher import SeriesKey
from workbench.tui.messages import CodeDiffRead, RunDetailsRead
from workbench.tui.screens._actions import RunActions
from workbench.tui.screens._chart_keys import ChartOptionKeys
from workbench.tui.screens._footer import Footer, fit_footer
from workbench.tui.widgets._plotting import ChartOptions, time_keyed
from workbench.tui.widgets.chart import MetricChart, zoom_charts
from workbench.tui.widgets.images import ImagesPanel
from workbench.tui.widgets.system_panel import SystemPanel
from workbench.tui._typed import workbench_app

__all__ = ["RunScreen", "TABS", "event_text"]

#: The tabs, in order (keys 1-8 switch to them).
TABS = ("overview", "config", "metrics", "output", "artifacts", "code", "system", "images")
_DETAILS_EVERY = 2.0  # seconds between re-reads of events and artifacts while the run changes
_MAX_CHARTS = 4


class RunScreen(ChartOptionKeys, RunActions, Screen[None]):
    """Everything about one run; Esc goes back."""

    HELP_TITLE = "Run screen"
    _ready = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('overview')", "Overview", show=False),
        Binding("2", "tab('config')", "Config", show=False),
        Binding("3", "tab('metrics')", "Metrics", show=False),
        Binding("4", "tab('output')", "Output", show=False),
        Binding("5", "tab('artifacts')", "Artifacts", show=False),
        Binding("6", "tab('code')", "Code", show=False),
        Binding("7", "tab('system')", "System", show=False),
        Binding("8", "tab('images')", "Images", show=False),
        Binding("s", "stop", "Stop"),
        Binding("K", "kill", "Kill", show=False),
        Binding("r", "resume", "Resume"),
        Binding("f", "fork", "Fork"),
        Binding("C", "clone", "Clone", show=False),
        Binding("v", "verify", "Verify", show=False),
        Binding("d", "delete", "Delete"),
        Binding("p", "pin", "Pin", show=False),
        Binding("l", "log_scale", "Log scale", show=False),
        Binding("x", "x_axis", "Step/time", show=False),
        Binding("e", "smoothing", "Smoothing", show=False),
        Binding("y", "skip_start", "Y range without the start", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in: half the steps, around the cursor", key_display="+",
                show=False),
        Binding("minus", "zoom(2)", "Zoom out: twice the steps", key_display="-", show=False),
        Binding("0", "zoom(0)", "Zoom reset: every step", key_display="0", show=False),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__(classes="run-screen")
        self.run_id = run_id
        self.events: list[RunEvent] = []
        self.artifacts: list[dict[str, Any]] = []
        self.steps: list[RunStep] = []
        self.evaluations: list[dict[str, Any]] = []
        self.details_read = 0.0
        self.diff_text: str | None = None
        self._chosen: list[str] | None = None
        self._log_seen = 0
        self._keys_shown: tuple[str, ...] = ()
        self.chart_options = ChartOptions()

    @property
    def row(self) -> Run | None:
        """The run as the app knows it now (None once deleted)."""
        return self.app.runs.rows.get(self.run_id)  # type: ignore[attr-defined]

    def current_run_id(self) -> str | None:
        """This screen's run."""
        return self.run_id if self.row else None

    def compose(self) -> ComposeResult:
        app = workbench_app(self)
        self.chart_options.smoothing = app.settings.smoothing  # app.toml's starting weight
        yield Static(id="run-header")
        with TabbedContent(initial="overview", id="run-tabs"):
            with TabPane("Overview", id="overview"):
                with VerticalScroll():
                    yield Static(id="overview-text")
            with TabPane("Config", id="config"):
                yield DataTable(id="config-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Metrics", id="metrics"):
                with Horizontal(id="metrics-body"):
                    with Vertical(id="metrics-side"):
                        yield Static("keys (space)", classes="panel-title")
                        yield SelectionList[str](id="metric-keys")
                        yield DataTable(id="metric-summary", cursor_type="none", show_cursor=False)
                    yield VerticalScroll(id="metric-charts")
            with TabPane("Output", id="output"):
                yield RichLog(id="run-log", max_lines=5000, wrap=True, markup=False, highlight=False,
                              auto_scroll=True)
            with TabPane("Artifacts", id="artifacts"):
                yield DataTable(id="artifact-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Code", id="code"):
                with VerticalScroll(id="code-scroll"):
                    yield Static("reading the diff…", id="code-diff")
            with TabPane("System", id="system"):
                yield SystemPanel(self.run_id, app.series, app.run_colors, app.run_name, app.request_tick,
                                  options=self.chart_options, id="system-panel")
            with TabPane("Images", id="images"):
                yield ImagesPanel(id="images-panel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._ready = True
        app = workbench_app(self)
        self.query_one("#config-table", DataTable).add_columns("key", "value", "default", "")
        self.query_one("#artifact-table", DataTable).add_columns("kind", "size", "path", "written")
        self.query_one("#metric-summary", DataTable).add_columns("key", "last", "min", "max")
        row = self.row
        if row is not None and row.run_dir:
            app.logs.want(self, [self.run_id], {self.run_id: str(Path(row.run_dir) / "output.log")})
        app.want_last([self.run_id])
        app.request_tick()
        self._read_details()
        if row is not None:
            self._read_diff(row.git_head, row.snapshot_commit)
        self._fill_config()
        self.apply_changes(Changes(runs={self.run_id}))
        self._append_log()  # what the app has read of the log already (it may never change again)

    def on_unmount(self) -> None:
        self.app.logs.drop(self)  # type: ignore[attr-defined]
        self.app.series.drop(self)  # type: ignore[attr-defined]

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < 100
        self.set_class(narrow, "narrow")
        fit_footer(self, {"fork", "delete"}, narrow)
        fit_footer(self.app, {"quit"}, narrow)
        self.query_one(SystemPanel).set_class(narrow, "narrow")

    # -- live data -------------------------------------------------------------------

    def apply_changes(self, changes: Changes) -> None:
        """Show what the last tick changed for this run."""
        if not self._ready:
            return
        if self.run_id in changes.removed:
            self._show_header()
            return
        if self.run_id in changes.runs:
            self._show_header()
            self._show_overview()
            if time.monotonic() - self.details_read > _DETAILS_EVERY:
                self._read_details()
        if self.run_id in changes.last or self.run_id in changes.runs:
            self._show_keys()
        for chart in self.query(MetricChart):
            chart.data_changed(changes.series)
        if changes.series:
            self._show_summary()
        if self.run_id in changes.logs:
            self._append_log()

    def _show_header(self) -> None:
        app = workbench_app(self)
        row = self.row
        if not row:
            self.query_one("#run-header", Static).update(
                Content.from_markup("[$error]this run was deleted[/] — Esc goes back"))
            return
        colour = app.run_colors.hex(self.run_id)
        status = row.status
        progress = present.progress_bar(row, 6)
        where = f"{app.runs.device(row) or '—'}/{row.backend or '—'}"
        pinned = "  ⚑ pinned" if app.selection.pinned == self.run_id else ""
        self.query_one("#run-header", Static).update(Content.assemble(
            (f"{present.STATUS_GLYPHS.get(status, '?')} {row.name or self.run_id}", f"bold {colour}"),
            (f"  {self.run_id}", "dim"), f"  {row.task or ''}  ",
            (status.value, _STATUS_STYLE.get(status, "")), f"  {progress}  {where}",
            (f"  {present.seconds(app.runs.ran(row, app.clock()))}", "dim"), (pinned, "$accent"),
        ))

    def _show_overview(self) -> None:
        app = workbench_app(self)
        row = self.row
        if not row:
            return
        now = app.clock()
        lines: list[tuple[str, Any]] = []
        status = row.status
        why = ""
        if row.error:
            why = f" — {row.error}"
        elif row.exit_code not in (None, 0):
            why = f" — exit code {row.exit_code}"
        elif row.signal:
            why = f" — signal {row.signal}"
        lines.append(("status", Content.assemble((status.value, _STATUS_STYLE.get(status, "")), why)))
        progress = f"step {row.step if row.step is not None else '—'}"
        if row.total_steps:
            progress += f" of {row.total_steps}"
        if row.epoch is not None:
            epochs = row.config.get("epochs")
            of = f" of {epochs}" if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 else ""
            progress += f" · epoch {row.epoch}{of}"
        lines.append(("progress", Content(f"{present.progress_bar(row, 10)}  {progress}")))
        spans = attempt_spans(self.events) if self.events else app.runs.spans.get(self.run_id)
        times = (f"created {present.when(row.created_at)} · started {present.when(row.started_at)}"
                 f" · ended {present.when(row.ended_at)} · {ran_text(row, spans, now)}")
        if status.is_live and row.heartbeat_at:
            times += f" · heartbeat {present.age(row.heartbeat_at, now)}"
        lines.append(("times", Content(times)))
        lines.append(("attempt", Content(str(row.attempt or 1))))
        if len(self.steps) > 1 or any(step.name != "fit" for step in self.steps):
            lines.append(("steps", Content(present.steps_text(self.steps, now))))
        nproc = f" ×{row.nproc}" if (row.nproc or 1) > 1 else ""
        chose = app.runs.device(row)
        device = f"auto → {chose}" if row.device == "auto" and chose != "auto" else (row.device or "—")
        lines.append(("device", Content(f"{device} / {row.backend or '—'}{nproc} · "
                                        f"precision {row.precision or '—'} · host {row.host or '—'}")))
        head = (row.git_head or "—")[:10]
        branch = row.git_branch or "detached HEAD"
        dirty = Content.from_markup(" [$warning]* uncommitted changes[/]") if row.git_dirty else Content(" clean")
        lines.append(("git", Content.assemble(f"HEAD {head} on {branch} ·", dirty,
                                              f" · snapshot {(row.snapshot_commit or '—')[:10]}")))
        excluded = next((e for e in reversed(self.events) if e.kind == "snapshot-excluded"), None)
        files = list((excluded.data or {}).get("files") or []) if excluded is not None else []
        if row.snapshot_commit:
            left = (", ".join(files[:3]) + (f", … {len(files) - 3} more" if len(files) > 3 else "")) if files \
                else "nothing"
            lines.append(("snapshot", Content(f"tracked files and untracked ones git does not ignore; "
                                              f"left out: {left}")))
        data = next((e for e in reversed(self.events) if e.kind == "data"), None)
        if data is not None:
            lines.append(("data", Content(data.message)))
        lines.append(("folder", Content(present.tilde(row.run_dir))))
        if row.command:
            lines.append((row.kind, Content(" ".join(row.command))))
        if row.is_evaluation:
            changed = ", ".join(f"{k}={present.value_text(v)}" for k, v in row.overrides.items())
            lines.append(("evaluates", Content(f"{app.run_name(row.parent_id)} at {row.parent_checkpoint or '—'}"
                                               + (f" with {changed}" if changed else " with its own config"))))
        elif row.parent_id:
            lines.append(("forked from", Content(f"{app.run_name(row.parent_id)} at "
                                                 f"{row.parent_checkpoint or 'its checkpoint'}")))
        if row.tags or row.profile:
            lines.append(("tags", Content(f"{', '.join(row.tags or []) or '—'} · profile "
                                          f"{row.profile or '—'}")))
        parts: list[Any] = []
        for label, value in lines:
            parts += [(f"{label:<12}", "bold"), value, "\n"]
        if self.evaluations:
            parts.append(("\nevaluations\n", "bold"))
            for item in self.evaluations:
                status = item["status"]
                changed = " ".join(f"{k}={present.value_text(v)}" for k, v in item["overrides"].items()) or "—"
                shown = "  ".join(f"{k} {present.metric(v)}" for k, v in sorted(item["metrics"].items())
                                  if k.startswith(("test/", "val/")))
                parts += [f"  {item['name'] or item['id']:<22} {item['verb']:<9} {item['checkpoint']:<16} {changed}  ",
                          (status, _STATUS_STYLE.get(status, "")), f"  {shown}\n"]
        if self.events:
            parts.append(("\nhistory\n", "bold"))
            for event in self.events:
                stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
                parts += [(f"  {stamp}  ", "dim"), (f"{event.kind:<16} ", _EVENT_STYLE.get(event.kind, "")),
                          f"{event_text(event)}\n"]
        if row.traceback:
            parts += [("\ntraceback\n", "bold $error"), (row.traceback.rstrip() + "\n", "$text-muted")]
        self.query_one("#overview-text", Static).update(Content.assemble(*parts))

    def _fill_config(self) -> None:
        app = workbench_app(self)
        table = self.query_one("#config-table", DataTable)
        table.clear()
        row = self.row
        if row is None:
            return
        config = present.flatten_config(row.config)
        defaults: dict[str, Any] = {}
        if app.discovery is not None:
            for task in app.discovery.tasks:
                if task.name == row.task:
                    defaults = {f.name: f.default for f in task.config if f.has_default and not f.default_source}
        for key, value in config.items():
            default = defaults.get(key, None)
            changed = key in defaults and default != value
            table.add_row(Text(key), Text(present.value_text(value), style="bold" if changed else ""),
                          Text(present.value_text(default) if key in defaults else "", style="dim"),
                          "◆" if changed else "", key=key)

    # -- metrics ---------------------------------------------------------------------

    def _show_keys(self) -> None:
        app = workbench_app(self)
        self._show_system()
        # System metrics (sys/*, stored against time) have their own tab.
        keys = tuple(sorted(k for k in app.runs.last.get(self.run_id, {}) if not time_keyed(k)))
        if keys == self._keys_shown:
            return
        self._keys_shown = keys
        if self._chosen is None:
            losses = [k for k in keys if "loss" in k]
            self._chosen = (losses or list(keys))[:_MAX_CHARTS]
        # Every key's curve, coarsely: the store keeps each bucket's min and max, so the
        # summary's min and max are exact even for keys without a chart.
        if app.series.want(self, {SeriesKey(self.run_id, k): 30 for k in keys}):
            app.request_tick()
        chooser = self.query_one("#metric-keys", SelectionList)
        chooser.clear_options()
        chooser.add_options([Selection(k, k, k in self._chosen) for k in keys])
        self._show_charts()
        self._show_summary()

    @on(SelectionList.SelectedChanged, "#metric-keys")
    def _keys_changed(self, event: SelectionList.SelectedChanged) -> None:
        self._chosen = list(event.selection_list.selected)
        self._show_charts()

    def _show_charts(self) -> None:
        app = workbench_app(self)
        holder = self.query_one("#metric-charts", VerticalScroll)
        charts = list(holder.query(MetricChart))
        wanted = self._chosen or []
        while len(charts) > len(wanted):
            charts.pop().remove()
        for i, key in enumerate(wanted):
            if i >= len(charts):
                chart = MetricChart(app.series, app.run_colors, app.run_name, app.request_tick,
                                    pinned=lambda: None, options=self.chart_options, classes="run-chart")
                holder.mount(chart)
                charts.append(chart)
            charts[i].show(key, [self.run_id])
        self._show_summary()

    def _show_summary(self) -> None:
        app = workbench_app(self)
        table = self.query_one("#metric-summary", DataTable)
        last = app.runs.last.get(self.run_id, {})
        table.clear()
        for key in sorted(k for k in last if not time_keyed(k)):
            data = app.series.data.get(SeriesKey(self.run_id, key, "step"))
            values = [v for _, v in data.points if v == v] if data else []
            table.add_row(Text(key), Text(present.metric(last[key])),
                          Text(present.metric(min(values)) if values else "·"),
                          Text(present.metric(max(values)) if values else "·"))

    def _show_system(self) -> None:
        app = workbench_app(self)
        active = self.query_one(TabbedContent).active == "system"
        self.query_one(SystemPanel).show(app.runs.last.get(self.run_id, {}), active)

    @on(TabbedContent.TabActivated, "#run-tabs")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self._show_system()  # the System tab's charts exist (and are read) only while it is shown
        shown = self.query_one(TabbedContent).active == "images"
        panel = self.query_one(ImagesPanel)
        panel.activate(shown)  # images are decoded (Pillow loaded) only while the tab is shown
        if shown:
            self.query_one("#image-keys").focus()

    def _options_changed(self) -> None:
        for chart in self.query(MetricChart):
            chart.options_changed()

    def action_zoom(self, factor: float) -> None:
        """Zoom every chart's x axis in (0.5) or out (2) around the middle; 0: every step again."""
        zoom_charts(self.query(MetricChart), self.chart_options, factor)

    # -- output ----------------------------------------------------------------------

    def _append_log(self) -> None:
        app = workbench_app(self)
        lines, total = app.logs.new_lines(self.run_id, self._log_seen)
        self._log_seen = total
        if lines:  # long lines wrap; the colours a run printed are kept
            self.query_one("#run-log", RichLog).write(Text.from_ansi("\n".join(lines)))

    # -- slow reads ------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="run-details")
    def _read_details(self) -> None:
        from workbench.runs.artifacts import record_artifacts

        app = workbench_app(self)
        self.details_read = time.monotonic()
        index = app.index
        row = index.get_run(self.run_id)
        if row is None:
            return
        if row.run_dir and Path(row.run_dir).is_dir():
            try:
                record_artifacts(index, self.run_id, Path(row.run_dir))
            except Exception:  # a file vanishing mid-scan: the next read catches up
                pass
        from workbench.runs.evaluate import evaluation_records

        self.post_message(RunDetailsRead(self.run_id, index.events(self.run_id), index.artifacts(self.run_id),
                                         index.last_metrics(self.run_id), index.run_steps(self.run_id),
                                         evaluation_records(index, row)))

    def on_run_details_read(self, message: RunDetailsRead) -> None:
        app = workbench_app(self)
        self.events = message.events
        self.artifacts = message.artifacts
        self.steps = message.steps
        self.evaluations = message.evaluations
        app.runs.set_last({message.run_id: message.last})
        row = self.row
        if row is not None and row.attempt > 1:
            app.runs.set_spans({self.run_id: attempt_spans(self.events)})
            self._show_header()
        self._show_overview()
        self._show_keys()
        table = self.query_one("#artifact-table", DataTable)
        table.clear()
        for item in self.artifacts:
            table.add_row(Text(item.get("kind") or "file"), Text(present.human_size(item.get("size"))),
                          Text(item["path"]), Text(present.when(item.get("created_at"))), key=item["path"])
        if not self.artifacts:
            table.add_row(Text("—"), Text(""), Text("no files yet (a task writes them with self.artifact_path(...))"),
                          Text(""))
        self.query_one(ImagesPanel).set_images(image_entries(self.artifacts, row.run_dir if row else None))

    @work(thread=True, exclusive=True, group="run-diff")
    def _read_diff(self, head: str | None, snapshot: str | None) -> None:
        from workbench.snapshot import SnapshotError, diff

        app = workbench_app(self)
        key = ("run", self.run_id)
        if not snapshot:
            self.post_message(CodeDiffRead(key, "", "this run has no code snapshot"))
            return
        if not head:
            self.post_message(CodeDiffRead(key, "", "the project had no HEAD commit when this run started; "
                                                    "its snapshot is the whole tree"))
            return
        project = app.project
        try:
            text = diff(project.root, head, snapshot, state_dir=project.state_dir, color=True)
        except SnapshotError as exc:
            self.post_message(CodeDiffRead(key, "", str(exc)))
            return
        self.post_message(CodeDiffRead(key, text))

    def on_code_diff_read(self, message: CodeDiffRead) -> None:
        target = self.query_one("#code-diff", Static)
        if message.error:
            target.update(Content.from_markup("[$warning]$e", e=message.error))
        elif not message.text.strip():
            target.update(Content.from_markup("[dim]the snapshot is HEAD exactly: no uncommitted changes"))
        else:
            target.update(Text.from_ansi(message.text))

    # -- keys ------------------------------------------------------------------------

    def action_back(self) -> None:
        """Back to the previous screen."""
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        """Switch tab."""
        self.query_one(TabbedContent).active = tab

    def pin_changed(self) -> None:
        self._show_header()

    def select_run(self, run_id: str) -> None:
        """A fork of this run was started: open it."""
        self.app.switch_screen(RunScreen(run_id))


_EPOCH_START = re.compile(r"\bepoch (\d+), batch 0\b")


def event_text(event: RunEvent) -> str:
    """An event's message, with a checkpoint's position said the way the run's row counts
    epochs: "epoch 3, batch 0" (the next batch to run) reads "after epoch 2"."""
    if event.kind not in ("checkpoint", "restored"):
        return event.message

    def after(match: re.Match[str]) -> str:
        done = int(match.group(1)) - 1
        return f"after epoch {done}" if done > 0 else "at the start"

    return _EPOCH_START.sub(after, event.message)


_STATUS_STYLE = {"queued": "$text-muted", "running": "bold $primary", "completed": "$success",
                 "failed": "bold $error", "stopped": "$warning", "interrupted": "italic $warning"}
_EVENT_STYLE = {"failed": "$error", "interrupted": "$warning", "stopped": "$warning", "completed": "$success",
                "resumed": "$accent", "replay": "$accent", "launched": "$primary"}
